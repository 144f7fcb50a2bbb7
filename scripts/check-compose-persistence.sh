#!/usr/bin/env bash
# Run while the compose service is up (scripts/container-check.sh does, from the project
# root): trains a model through the service, checks that its files are in
# ./saved_models on the host, restarts the service with `down` and `up`, and checks that
# the model is still listed and predicts.
set -euo pipefail
URL=${URL:-http://127.0.0.1:8000}
COMPOSE=${COMPOSE:-docker-compose -p cismoke}
NAME=persist-check
json=(-H 'content-type: application/json')

wait_healthy() {
  for _ in $(seq 1 120); do curl -fsS -m 2 "$URL/health" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "the service did not come back" >&2; return 1
}

curl -fsS -X POST "$URL/remove" "${json[@]}" -d "{\"config\": {\"name\": \"$NAME\"}}" >/dev/null 2>&1 || true
curl -fsS -X POST "$URL/fit" "${json[@]}" -d "{\"X\": [[0, 1], [1, 0], [0, 2], [2, 0]],
  \"y\": [\"a\", \"b\", \"a\", \"b\"], \"config\": {\"name\": \"$NAME\", \"model_type\": \"LogisticRegression\"}}"
echo
ls -ln "saved_models/$NAME/1.joblib" "saved_models/$NAME/1.onnx" "saved_models/$NAME/1.json" \
  "saved_models/$NAME/pointers.json"
# Signed, with a key that is not among the models.
grep -q '"signature"' "saved_models/$NAME/1.json"
if find saved_models -name '*.key' | grep -q .; then echo "a key file among the models" >&2; exit 1; fi
key_id=$($COMPOSE exec -T model-server python -m server.trust list | grep -o 'key [0-9a-f]*')

$COMPOSE down
$COMPOSE up -d
wait_healthy

info=$(curl -fsS "$URL/models/$NAME")
echo "$info"
grep -q '"status":"trained"' <<<"$info"   # not "untrusted": the key survived down and up
trusted=$($COMPOSE exec -T model-server python -m server.trust list)
echo "$trusted"
grep -q "$key_id" <<<"$trusted"
grep -q "$NAME/1: trusted" <<<"$trusted"
curl -fsS -X POST "$URL/load" "${json[@]}" -d "{\"config\": {\"name\": \"$NAME\"}}"
echo
prediction=$(curl -fsS -X POST "$URL/predict" "${json[@]}" \
  -d "{\"X\": [[0, 3]], \"config\": {\"name\": \"$NAME\"}}")
echo "$prediction"
grep -q '"predictions":\["a"\]' <<<"$prediction"
# Compiled inference works in the image: the loaded model is served by ONNX Runtime.
loaded=$(curl -fsS "$URL/models/$NAME")
echo "$loaded"
grep -q '"runtime":"onnx"' <<<"$loaded"
# A CSV file through the form parser and pyarrow, answered as CSV.
printf 'f0,f1\n0,3\n3,0\n' > /tmp/check-compose-rows.csv
csv=$(curl -fsS -F file=@/tmp/check-compose-rows.csv -F "config={\"name\": \"$NAME\"}" \
  -H 'Accept: text/csv' "$URL/predict")
echo "$csv"
grep -q '"a"' <<<"$csv"
curl -fsS -X POST "$URL/remove" "${json[@]}" -d "{\"config\": {\"name\": \"$NAME\"}}"
echo
echo "persistence across down/up (models still verify), compiled inference and CSV files: OK"
