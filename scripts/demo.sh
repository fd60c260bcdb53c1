#!/usr/bin/env bash
# The main job on a demo database: builds toolcfg, creates a master key and a database in a
# folder (a new temporary one, or the one given), migrates it, imports the onboarding fixture
# with plaintext keys (encrypted on the way in), shows the migration status, exports a
# verified backup with the keys still encrypted, and checks that backup on its own. Installs what building needs first, if missing.
#   scripts/demo.sh [FOLDER]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/bootstrap.sh" build
folder=${1:-$(mktemp -d "${TMPDIR:-/tmp}/toolcfg-demo.XXXXXX")}
mkdir -p "$folder"

swift build --package-path "$root" --product toolcfg >&2
toolcfg="$root/.build/debug/toolcfg"
db="$folder/demo.db"
key="$folder/master.key"

[ -f "$key" ] || "$toolcfg" keygen --out "$key"
"$toolcfg" migrate up --db "$db"
"$toolcfg" import --db "$db" --in "$root/fixtures/demo-onboarding.csv" --master-key-file "$key"
"$toolcfg" migrate status --db "$db"
"$toolcfg" export --db "$db" --out "$folder/backup.json" --force --verify
"$toolcfg" check-backup "$folder/backup.json"
echo >&2
echo "demo database: $db (master key in $key, backup in $folder/backup.json)" >&2
echo "rows, keys encrypted:" >&2
sqlite3 -header -column "$db" "SELECT id, user_id, tool_id, enabled, substr(encrypted_api_key, 1, 16) || '...' AS encrypted_api_key, created_at FROM user_tool_configs ORDER BY id"
