import { componentCommand } from '../common/cli.js';
import { namesrvComponent } from '../namesrv/main.js';

await componentCommand(namesrvComponent).parseAsync();
