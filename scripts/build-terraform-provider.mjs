// Builds the Terraform/OpenTofu provider plugin into one JavaScript file,
// dist/terraform-provider/main.js, so `bin/terraform-provider-snapsync`
// starts without compiling TypeScript (tsx) every time tofu launches it.
// The protocol definitions (.proto, read at start-up) are copied next to it.
import * as fs from 'node:fs';
import { bundle } from './bundle.mjs';

const protos = fs.readdirSync('provider-terraform/protocol').filter((f) => f.endsWith('.proto'));
fs.mkdirSync('dist/terraform-provider/protocol', { recursive: true });
for (const proto of protos) {
  fs.copyFileSync(`provider-terraform/protocol/${proto}`, `dist/terraform-provider/protocol/${proto}`);
}
await bundle({
  entry: 'provider-terraform/main.ts',
  outfile: 'dist/terraform-provider/main.js',
  extraInputs: protos.map((proto) => `provider-terraform/protocol/${proto}`),
});
