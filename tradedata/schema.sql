-- Tamga trade data model: the one DDL source (docs/architecture.md, "Contracts").
-- Money columns customs_value, duty_amount, vat_amount, additional_duty and penalty_amount are
-- in the reporting currency (dataset_info.reporting_currency); invoice_value is in the
-- declaration's invoice currency.

CREATE TABLE IF NOT EXISTS countries (
    iso2    VARCHAR PRIMARY KEY,           -- ISO 3166-1 alpha-2
    iso3    VARCHAR NOT NULL,
    name    VARCHAR NOT NULL,
    region  VARCHAR
);

CREATE TABLE IF NOT EXISTS hs_nomenclature (
    code        VARCHAR PRIMARY KEY,       -- digits only: 2 (chapter), 4 (heading), 6 (subheading)
    level       INTEGER NOT NULL CHECK (level IN (2, 4, 6)),
    description VARCHAR NOT NULL,
    parent      VARCHAR,                   -- code one level up, NULL for chapters
    section     VARCHAR                    -- HS section (Roman numeral)
);

CREATE TABLE IF NOT EXISTS traders (
    trader_id      VARCHAR PRIMARY KEY,
    name           VARCHAR NOT NULL,
    tin            VARCHAR,
    country        VARCHAR,                -- ISO alpha-2 of establishment
    region         VARCHAR,
    sector         VARCHAR,
    aeo_status     VARCHAR,                -- e.g. 'none', 'AEO-C', 'AEO-S', 'AEO-F'
    registered_on  DATE
);

CREATE TABLE IF NOT EXISTS declarations (
    declaration_id    VARCHAR PRIMARY KEY,
    declaration_date  DATE NOT NULL,
    flow              VARCHAR NOT NULL CHECK (flow IN ('import', 'export')),
    trader_id         VARCHAR NOT NULL,
    declarant_id      VARCHAR,
    customs_office    VARCHAR,
    procedure_code    VARCHAR,
    transport_mode    VARCHAR,
    dispatch_country  VARCHAR,
    incoterm          VARCHAR,
    currency          VARCHAR,
    control_channel   VARCHAR CHECK (control_channel IN ('green', 'yellow', 'red'))
);

CREATE TABLE IF NOT EXISTS declaration_items (
    declaration_id     VARCHAR NOT NULL,
    item_no            INTEGER NOT NULL,
    hs_code            VARCHAR NOT NULL CHECK (regexp_full_match(hs_code, '[0-9]{6,10}')),
    goods_description  VARCHAR,
    origin_country     VARCHAR,
    seller_id          VARCHAR,
    related_party      BOOLEAN,
    preference_code    VARCHAR,
    net_mass_kg        DOUBLE,
    quantity           DOUBLE,
    quantity_unit      VARCHAR,
    invoice_value      DOUBLE,
    customs_value      DOUBLE NOT NULL,
    duty_rate_pct      DOUBLE,
    duty_amount        DOUBLE,
    vat_amount         DOUBLE,
    -- Denormalised from declarations for speed; always equal to the declaration's values
    -- (the demo generator and the importers copy them; tests check it). Filter and group
    -- items on these instead of joining declarations on the text key declaration_id.
    trader_id          VARCHAR NOT NULL,
    declaration_date   DATE NOT NULL,
    flow               VARCHAR NOT NULL CHECK (flow IN ('import', 'export')),
    -- The HS chapter, always left(hs_code, 2): grouping on it beats computing it per row.
    hs_chapter         VARCHAR NOT NULL CHECK (hs_chapter = left(hs_code, 2)),
    PRIMARY KEY (declaration_id, item_no)
);

CREATE TABLE IF NOT EXISTS audits (
    audit_id         VARCHAR PRIMARY KEY,
    trader_id        VARCHAR NOT NULL,
    opened_on        DATE NOT NULL,
    closed_on        DATE,
    audit_type       VARCHAR,
    outcome          VARCHAR,
    additional_duty  DOUBLE,
    penalty_amount   DOUBLE,
    summary          VARCHAR
);

CREATE TABLE IF NOT EXISTS dataset_info (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR
);

-- No secondary indexes: speed comes from the sort order. The writers store declaration_items
-- ordered by (trader_id, declaration_date) and declarations by (declaration_date, trader_id),
-- so DuckDB's zone maps skip the row groups a per-trader or per-period filter cannot match.
-- The ART indexes once declared here (declarations.trader_id and .declaration_date,
-- declaration_items.hs_code, audits.trader_id) made the file larger and writes slower without
-- speeding up any benchmark question (docs/sql.md, "Indexes"); only the primary keys remain.
