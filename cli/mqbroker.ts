import { componentCommand } from '../common/cli.js';
import { brokerComponent } from '../broker/main.js';

await componentCommand(brokerComponent).parseAsync();
