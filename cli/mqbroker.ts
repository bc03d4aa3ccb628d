import { brokerComponent } from '../broker/main.js';
import { componentCommand } from '../common/cli.js';

await componentCommand(brokerComponent).parseAsync();
