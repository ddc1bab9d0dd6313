// `node --import ./ts-register.mjs entry.ts`: install ts-hooks.mjs for the whole process.
import { register } from "node:module";

register("./ts-hooks.mjs", import.meta.url);
