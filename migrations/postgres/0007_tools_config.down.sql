-- PostgreSQL's version of migrations/0007_tools_config.down.sql (the identity's sequence goes
-- with its table).
DROP INDEX IF EXISTS idx_user_tool_configs_enabled;
DROP INDEX IF EXISTS idx_user_tool_configs_tool_id;
DROP INDEX IF EXISTS idx_user_tool_configs_user_id;
DROP TABLE IF EXISTS user_tool_configs;
