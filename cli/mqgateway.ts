import { componentCommand } from '../common/cli.js';
import { gatewayComponent } from '../gateway/main.js';

await componentCommand(gatewayComponent).parseAsync();
