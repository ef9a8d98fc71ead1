// RFC 8785 (JCS) with Samuel Erdtman's `canonicalize`, an implementation independent of ours.
// stdin: {"cases": [json_text, ...]}; stdout: {"results": [{"text": jcs} | {"error": msg}, ...]}
// Each case travels as JSON text and is parsed here, as any JavaScript verifier would.
import canonicalize from "canonicalize";
import { readJsonStdin, writeJson } from "./_stdin.mjs";

const input = await readJsonStdin();
const results = input.cases.map((text) => {
  try {
    return { text: canonicalize(JSON.parse(text)) };
  } catch (error) {
    return { error: String(error.message || error) };
  }
});
writeJson({ results });
