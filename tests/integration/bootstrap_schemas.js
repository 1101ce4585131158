// Validates every Kubernetes object in the YAML files given against kubernetes-models'
// JSON schemas; exits 1 naming each failure. Used by bootstrap_schemas.sh.
const fs = require("fs");
const yaml = require("js-yaml");

// Files that are YAML but no API object: kubeconfigs and the kubelet's own config.
const notApiObjects = new Set(["Config", "KubeletConfiguration"]);

let failures = 0, validated = 0;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, "utf8"));
  } catch (e) {
    console.error(`${file}: not YAML: ${e.message}`);
    failures++;
    continue;
  }
  for (const doc of docs) {
    if (doc === null) continue;
    const where = `${file}: ${doc.kind}/${doc.metadata ? doc.metadata.name : "?"}`;
    if (notApiObjects.has(doc.kind)) continue;
    let models;
    try {
      models = require(`kubernetes-models/${doc.apiVersion}`);
    } catch (e) {
      console.error(`${where}: no schema for apiVersion ${doc.apiVersion}`);
      failures++;
      continue;
    }
    const Model = models[doc.kind];
    if (!Model) {
      console.error(`${where}: no schema for kind ${doc.kind} in ${doc.apiVersion}`);
      failures++;
      continue;
    }
    try {
      new Model(doc).validate();
      validated++;
    } catch (e) {
      console.error(`${where}: ${e.message}`);
      failures++;
    }
  }
}
console.log(`${validated} objects valid, ${failures} failures`);
process.exit(failures ? 1 : 0);
