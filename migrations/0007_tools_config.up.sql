-- crates/services/migrations/0007_tools_config.up.sql
CREATE TABLE IF NOT EXISTS user_tool_configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,               -- JWT 'sub' claim (no FK)
    tool_id TEXT NOT NULL,               -- e.g., "builtin-exa-web-search"
    enabled INTEGER NOT NULL DEFAULT 0,  -- boolean as integer
    -- Encrypted API key storage (same pattern as api_model_aliases)
    encrypted_api_key TEXT,
    salt TEXT,
    nonce TEXT,
    created_at INTEGER NOT NULL,         -- Unix timestamp
    updated_at INTEGER NOT NULL,
    UNIQUE(user_id, tool_id)             -- composite unique constraint
);

CREATE INDEX IF NOT EXISTS idx_user_tool_configs_user_id ON user_tool_configs(user_id);
CREATE INDEX IF NOT EXISTS idx_user_tool_configs_tool_id ON user_tool_configs(tool_id);
CREATE INDEX IF NOT EXISTS idx_user_tool_configs_enabled ON user_tool_configs(enabled);
