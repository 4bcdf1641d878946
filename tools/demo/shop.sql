SET client_min_messages = warning;
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    signed_up timestamptz NOT NULL DEFAULT now(),
    prefs jsonb
);
CREATE TABLE products (id serial PRIMARY KEY, sku text UNIQUE NOT NULL, title text, price numeric(10,2) CHECK (price >= 0), manual oid);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY,
    customer_id bigint NOT NULL REFERENCES customers,
    status order_status NOT NULL DEFAULT 'new',
    placed_at date NOT NULL,
    total numeric(12,2),
    PRIMARY KEY (id, placed_at)
) PARTITION BY RANGE (placed_at);
CREATE TABLE orders_2024 PARTITION OF orders FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE orders_other PARTITION OF orders DEFAULT;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE order_lines (order_id bigint, placed_at date, product_id int REFERENCES products, qty int NOT NULL CHECK (qty > 0),
    FOREIGN KEY (order_id, placed_at) REFERENCES orders);
CREATE INDEX order_lines_order ON order_lines (order_id, placed_at);

INSERT INTO customers (email, name, prefs)
SELECT 'user' || g || '@example.com', 'Customer ' || g, jsonb_build_object('newsletter', g % 2 = 0, 'lang', (ARRAY['en','fr','de','日本語'])[1 + g % 4])
FROM generate_series(1, 20000) g;
INSERT INTO products (sku, title, price, manual)
SELECT 'SKU-' || g, 'Product ' || g, (g % 500) + 0.99, CASE WHEN g <= 5 THEN lo_from_bytea(0, convert_to(repeat('manual page ', 1000 * g), 'UTF8')) END
FROM generate_series(1, 1000) g;
INSERT INTO orders (customer_id, status, placed_at, total)
SELECT 1 + g % 20000, (ARRAY['new','paid','shipped','cancelled']::order_status[])[1 + g % 4], date '2023-06-01' + (g % 900), (g % 1000) * 1.25
FROM generate_series(1, 100000) g;
INSERT INTO order_lines SELECT o.id, o.placed_at, 1 + (o.id * 7) % 1000, 1 + o.id % 3 FROM orders o, generate_series(1, 2);

CREATE VIEW customer_totals AS SELECT c.id, c.email, sum(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.email;
CREATE MATERIALIZED VIEW daily_sales AS SELECT placed_at, count(*) AS orders, sum(total) AS total FROM orders GROUP BY placed_at;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.signed_up := now(); RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch();
COMMENT ON TABLE orders IS 'partitioned by year';
ALTER TABLE customers OWNER TO shop_owner;
