-- API tokens of `afb serve` with a PostgreSQL control plane (`afb api-token --database-url`).
-- Only the SHA-256 of a token is stored (tokens are 32 random bytes, so no slow hash is needed); the
-- token itself is printed once when it is created.

CREATE TABLE IF NOT EXISTS api_tokens (
    -- Hex SHA-256 of the token text.
    token_sha256 text PRIMARY KEY CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    -- 'operator' (every tenant) or 'tenant:NAME'.
    scope        text NOT NULL CHECK (scope = 'operator' OR scope ~ '^tenant:.+$'),
    label        text,
    -- NULL: never expires.
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
