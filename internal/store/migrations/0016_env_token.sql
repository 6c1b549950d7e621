-- Whether an API token was given in EASYMAIL_ADMIN_TOKEN: 1 for such a token, 0 for the others. When the
-- variable's value changes, the node revokes the tokens of earlier values. Before this column, the
-- environment's token and the generated one (admin.token) were both named 'admin': those rows are NULL
-- (unknown) until the next start with EASYMAIL_ADMIN_TOKEN set tells them apart by the admin.token file.
ALTER TABLE api_tokens ADD COLUMN from_env INTEGER DEFAULT 0;
UPDATE api_tokens SET from_env = NULL WHERE name = 'admin' AND role = 'operator';
