#!/usr/bin/env node
// The `agora` command. Sources are TypeScript, loaded in this same process through tsx's
// loader: one process, so a signal sent to it reaches the code that drains and stops.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exit(await main(process.argv.slice(2)));
