-- Tamga trade data model: the one DDL source (see ../shared/DESIGN.md, "Trade data model").
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

-- Per-trader and per-period look-ups.
CREATE INDEX IF NOT EXISTS idx_declarations_trader ON declarations (trader_id);
CREATE INDEX IF NOT EXISTS idx_declarations_date ON declarations (declaration_date);
CREATE INDEX IF NOT EXISTS idx_items_hs ON declaration_items (hs_code);
CREATE INDEX IF NOT EXISTS idx_audits_trader ON audits (trader_id);
