-- Routing functions for SQL producers: the awa-compatible key hash, enqueue
-- shard and partition of a bytea ordering key, equal bit for bit to
-- awa.routing (Python) and to awa's Rust code.  See
-- docs/adr/0002-routing-hash-contract.md.
--
-- Representation of unsigned 64-bit values: Postgres has no unsigned 64-bit
-- type.  `ordering_key_hash64` and `partition_hash64` return numeric holding
-- the exact unsigned value in [0, 2^64).  The `_i64` variants return the same
-- 64 bits reinterpreted as a two's-complement bigint (compact to store and
-- index; convert with `x + 2^64` when negative).  Shard and partition indexes
-- are integer.  NULL in, NULL out (STRICT).
--
-- Arithmetic must be exact modulo 2^64 and bigint multiplication raises on
-- overflow, so the per-byte loop keeps the state as two 32-bit halves (hi, lo):
-- with P = 1099511628211 = 2^40 + 435,
--   (hi*2^32 + lo) * P  mod 2^64
--     = (hi*435 + (lo mod 2^24) * 2^8) * 2^32 + lo*435   (mod 2^64)
-- where every intermediate stays below 2^42.  The finalizer's 64x64-bit
-- multiplies split the constant further into 16-bit limbs, so they too stay
-- in bigint (a numeric loop measured about half as fast).  Only the numeric
-- variants convert, once, at the end.

CREATE OR REPLACE FUNCTION __schema__.ordering_key_hash64_i64(p_key bytea)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
DECLARE
    -- 14695981039346656037 = 0xcbf29ce4_84222325
    v_hi bigint := 3421674724;
    v_lo bigint := 2216829733;
    v_t bigint;
BEGIN
    FOR v_i IN 0 .. length(p_key) - 1 LOOP
        v_t := v_lo * 435 + get_byte(p_key, v_i);
        v_hi := (v_hi * 435 + (v_t >> 32) + ((v_lo & 16777215) << 8)) & 4294967295;
        v_lo := v_t & 4294967295;
    END LOOP;
    IF v_hi >= 2147483648 THEN
        RETURN (v_hi - 4294967296) * 4294967296 + v_lo;
    END IF;
    RETURN v_hi * 4294967296 + v_lo;
END
$fn$;

-- mod(x + 2^64, 2^64) maps the signed bigint to its unsigned value in one
-- expression, so these two stay inlinable SQL functions.
CREATE OR REPLACE FUNCTION __schema__.ordering_key_hash64(p_key bytea)
RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
    SELECT mod(__schema__.ordering_key_hash64_i64(p_key)::numeric + 18446744073709551616,
               18446744073709551616)
$fn$;

CREATE OR REPLACE FUNCTION __schema__.partition_hash64_i64(p_key bytea)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
DECLARE
    v_hi bigint := 3421674724;
    v_lo bigint := 2216829733;
    v_t bigint;
    v_x bigint;
BEGIN
    -- Base hash (same loop as ordering_key_hash64_i64, kept as halves).
    FOR v_i IN 0 .. length(p_key) - 1 LOOP
        v_t := v_lo * 435 + get_byte(p_key, v_i);
        v_hi := (v_hi * 435 + (v_t >> 32) + ((v_lo & 16777215) << 8)) & 4294967295;
        v_lo := v_t & 4294967295;
    END LOOP;
    -- XOR the partition domain 0x9d4d1b2f_53a70c91.
    v_hi := v_hi # 2639076143;
    v_lo := v_lo # 1403456657;
    -- v ^= v >> 30 (the low half needs the old high half: update it first)
    v_lo := v_lo # ((((v_hi << 2) | (v_lo >> 30))) & 4294967295);
    v_hi := v_hi # (v_hi >> 30);
    -- v *= 0xbf58476d_1ce4e5b9 mod 2^64; low-half constant limbs 7396:58809,
    -- high-half limbs 48984:18285.  Every product is below 2^49.
    v_x := v_lo * 7396;
    v_t := v_lo * 58809 + ((v_x & 65535) << 16);
    v_hi := ((v_x >> 16) + (v_t >> 32)
             + ((v_hi * 58809 + (((v_hi * 7396) & 65535) << 16)) & 4294967295)
             + ((v_lo * 18285 + (((v_lo * 48984) & 65535) << 16)) & 4294967295)) & 4294967295;
    v_lo := v_t & 4294967295;
    -- v ^= v >> 27
    v_lo := v_lo # ((((v_hi << 5) | (v_lo >> 27))) & 4294967295);
    v_hi := v_hi # (v_hi >> 27);
    -- v *= 0x94d049bb_133111eb mod 2^64; limbs 4913:4587 and 38096:18875.
    v_x := v_lo * 4913;
    v_t := v_lo * 4587 + ((v_x & 65535) << 16);
    v_hi := ((v_x >> 16) + (v_t >> 32)
             + ((v_hi * 4587 + (((v_hi * 4913) & 65535) << 16)) & 4294967295)
             + ((v_lo * 18875 + (((v_lo * 38096) & 65535) << 16)) & 4294967295)) & 4294967295;
    v_lo := v_t & 4294967295;
    -- v ^= v >> 31
    v_lo := v_lo # ((((v_hi << 1) | (v_lo >> 31))) & 4294967295);
    v_hi := v_hi # (v_hi >> 31);
    IF v_hi >= 2147483648 THEN
        RETURN (v_hi - 4294967296) * 4294967296 + v_lo;
    END IF;
    RETURN v_hi * 4294967296 + v_lo;
END
$fn$;

CREATE OR REPLACE FUNCTION __schema__.partition_hash64(p_key bytea)
RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
    SELECT mod(__schema__.partition_hash64_i64(p_key)::numeric + 18446744073709551616,
               18446744073709551616)
$fn$;

-- Shard and partition reduce the exact unsigned value.  Each parameter of an
-- expensive argument is used once, so Postgres can inline these SQL functions
-- into the caller's query (a nested non-inlined SQL function measured ~2x slower).
CREATE OR REPLACE FUNCTION __schema__.shard_for_ordering_key(p_key bytea, p_shards integer)
RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
    SELECT CASE WHEN p_shards <= 1 THEN 0
                ELSE mod(__schema__.ordering_key_hash64(p_key), p_shards)::integer END
$fn$;

CREATE OR REPLACE FUNCTION __schema__.partition_for_ordering_key(p_key bytea, p_partitions integer)
RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
    SELECT CASE WHEN p_partitions <= 1 THEN 0
                ELSE mod(__schema__.partition_hash64(p_key), p_partitions)::integer END
$fn$;

COMMENT ON FUNCTION __schema__.ordering_key_hash64(bytea) IS
    'awa base ordering-key hash (h = h*1099511628211 + byte mod 2^64 from 14695981039346656037), exact unsigned value';
COMMENT ON FUNCTION __schema__.ordering_key_hash64_i64(bytea) IS
    'ordering_key_hash64 as the same 64 bits in a signed bigint';
COMMENT ON FUNCTION __schema__.shard_for_ordering_key(bytea, integer) IS
    'enqueue shard of an ordering key (ADR-025): 0 when shards <= 1, else ordering_key_hash64 mod shards';
COMMENT ON FUNCTION __schema__.partition_hash64(bytea) IS
    'domain-separated SplitMix64 finalizer of ordering_key_hash64, exact unsigned value';
COMMENT ON FUNCTION __schema__.partition_hash64_i64(bytea) IS
    'partition_hash64 as the same 64 bits in a signed bigint';
COMMENT ON FUNCTION __schema__.partition_for_ordering_key(bytea, integer) IS
    'partition index of an ordering key: 0 when partitions <= 1, else partition_hash64 mod partitions';
