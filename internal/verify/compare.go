package verify

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
)

// sides are one worker's sessions, each in a read-only repeatable-read
// transaction so that a range's hash and its drill-down see the same rows.
type sides struct {
	src, dst *pgx.Conn
}

// session settings that make row text identical on both servers.
const sessionSQL = `
SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
` + catalog.NoTransactionTimeout + `;
SET row_security = off; SET extra_float_digits = 3; SET DateStyle = ISO; SET IntervalStyle = postgres;
SET TimeZone = 'UTC'; SET bytea_output = 'hex'; SET lc_monetary = 'C';
SELECT pg_catalog.set_config('search_path', '', false);`

func newSides(ctx context.Context, src, dst *conninfo.Endpoint, snapshot string) (*sides, error) {
	s := &sides{}
	var err error
	if s.src, err = src.Connect(ctx); err != nil {
		return nil, err
	}
	if s.dst, err = dst.Connect(ctx); err != nil {
		s.close()
		return nil, err
	}
	for _, c := range []*pgx.Conn{s.src, s.dst} {
		if _, err := c.Exec(ctx, sessionSQL); err != nil {
			s.close()
			return nil, fmt.Errorf("prepare session: %w", err)
		}
		if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			s.close()
			return nil, fmt.Errorf("begin: %w", err)
		}
	}
	if snapshot != "" {
		if _, err := s.src.Exec(ctx, catalog.ImportSnapshot(snapshot)); err != nil {
			s.close()
			return nil, fmt.Errorf("source: read in snapshot %s: %w", snapshot, err)
		}
	}
	return s, nil
}

func (s *sides) close() {
	for _, c := range []*pgx.Conn{s.src, s.dst} {
		if c != nil {
			c.Close(context.Background())
		}
	}
}

// bucketing says how rows are grouped into ranges.
type bucketing struct {
	expr     string // SQL giving a row's bucket number
	describe func(b int64) string
	// where restricts a query to bucket b (for drill-down), "" when only expr works.
	where  func(b int64) string
	keySQL string // SQL giving a row's key as text, "" without a key
	label  string
}

type bucketStats struct {
	rows int64
	hash string // sum of the rows' 64-bit hashes
}

func (s *sides) compare(ctx context.Context, j job, rangeRows int64, quick bool) (*TableResult, error) {
	start := time.Now()
	t := j.table
	res := &TableResult{Database: j.db, Table: t.Name.String()}
	var exists bool
	if err := s.dst.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", t.Name.Quoted()).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		res.Note = "missing on the target"
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	srcWhere := ""
	if j.pred != "" {
		srcWhere = " WHERE " + j.pred
	}
	// First the whole table: one aggregate the servers can run in parallel.
	// Only when it differs are the rows grouped into ranges to locate the
	// difference (grouping costs a sort).
	whole := &bucketing{expr: "0"}
	srcStats, dstStats, err := s.hashBoth(ctx, t.Name.Quoted(), whole, srcWhere)
	if err != nil {
		return nil, err
	}
	if srcStats[0] == dstStats[0] {
		res.SourceRows, res.TargetRows, res.Ranges, res.Match = srcStats[0].rows, dstStats[0].rows, 1, true
		res.Key = "whole table"
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	if quick {
		res.SourceRows, res.TargetRows, res.Ranges, res.Key = srcStats[0].rows, dstStats[0].rows, 1, "whole table"
		res.Diffs = []Diff{{Range: "whole table", SourceRows: srcStats[0].rows, TargetRows: dstStats[0].rows}}
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	b, err := s.bucketsFor(ctx, j, rangeRows)
	if err != nil {
		return nil, err
	}
	res.Key = b.label
	srcStats, dstStats, err = s.hashBoth(ctx, t.Name.Quoted(), b, srcWhere)
	if err != nil {
		return nil, err
	}
	ids := map[int64]bool{}
	for id, st := range srcStats {
		ids[id] = true
		res.SourceRows += st.rows
	}
	for id, st := range dstStats {
		ids[id] = true
		res.TargetRows += st.rows
	}
	res.Ranges = len(ids)
	var diffIDs []int64
	for id := range ids {
		if srcStats[id] != dstStats[id] {
			diffIDs = append(diffIDs, id)
		}
	}
	sort.Slice(diffIDs, func(a, c int) bool { return diffIDs[a] < diffIDs[c] })
	for i, id := range diffIDs {
		d := Diff{Range: b.describe(id), SourceRows: srcStats[id].rows, TargetRows: dstStats[id].rows}
		if i < 3 && b.keySQL != "" {
			if d.Keys, err = s.drillDown(ctx, j, b, id, srcWhere); err != nil {
				return nil, err
			}
		}
		res.Diffs = append(res.Diffs, d)
	}
	res.Match = len(diffIDs) == 0
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// hashBoth runs the same per-bucket count and hash on both sides at once.
func (s *sides) hashBoth(ctx context.Context, table string, b *bucketing, srcWhere string) (src, dst map[int64]bucketStats, err error) {
	q := func(where string) string {
		group := ""
		if b.expr != "0" {
			group = " GROUP BY 1"
		}
		return fmt.Sprintf(`SELECT %s AS b, count(*), COALESCE(sum(pg_catalog.hashtextextended(t::text, 0)), 0)::text
		  FROM ONLY %s t%s%s`, b.expr, table, where, group)
	}
	type sideResult struct {
		stats map[int64]bucketStats
		err   error
	}
	ch := make(chan sideResult, 1)
	go func() {
		m, err := bucketHashes(ctx, s.dst, q(""))
		ch <- sideResult{m, err}
	}()
	src, err = bucketHashes(ctx, s.src, q(srcWhere))
	d := <-ch
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("target: %w", d.err)
	}
	return src, d.stats, nil
}

func bucketHashes(ctx context.Context, conn *pgx.Conn, sql string) (map[int64]bucketStats, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]bucketStats{}
	for rows.Next() {
		var id int64
		var st bucketStats
		if err := rows.Scan(&id, &st.rows, &st.hash); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}

// bucketsFor picks the ranges: contiguous key ranges for a single integer key,
// hash buckets of the key for other keys, hash buckets of the row without a key.
func (s *sides) bucketsFor(ctx context.Context, j job, rangeRows int64) (*bucketing, error) {
	t := j.table
	est := t.Rows
	if est <= 0 {
		est = t.Pages * 50
	}
	n := max(int64(1), min(int64(math.Ceil(float64(est)/float64(rangeRows))), 1000))
	cols, intKey, err := tableKey(ctx, s.src, t.OID)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return &bucketing{
			expr:     fmt.Sprintf("(pg_catalog.hashtextextended(t::text, 7) & 9223372036854775807) %% %d", n),
			describe: func(b int64) string { return fmt.Sprintf("row hash bucket %d of %d (no key to locate rows)", b, n) },
			label:    "no key: rows hashed into buckets",
		}, nil
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = "t." + pgx.Identifier{c}.Sanitize()
	}
	keyText := "ROW(" + strings.Join(quoted, ", ") + ")::text"
	if len(cols) == 1 {
		keyText = quoted[0] + "::text"
	}
	label := strings.Join(cols, ", ")
	if intKey {
		var lo, hi *int64
		where := ""
		if j.pred != "" {
			where = " WHERE " + j.pred
		}
		if err := s.src.QueryRow(ctx, fmt.Sprintf("SELECT min(%s), max(%s) FROM ONLY %s t%s", quoted[0], quoted[0], t.Name.Quoted(), where)).Scan(&lo, &hi); err != nil {
			return nil, fmt.Errorf("key bounds: %w", err)
		}
		if lo != nil {
			return intBuckets(quoted[0], cols[0], *lo, *hi, n, keyText), nil
		}
	}
	expr := fmt.Sprintf("(pg_catalog.hashtextextended(%s, 7) & 9223372036854775807) %% %d", keyText, n)
	return &bucketing{
		expr:     expr,
		describe: func(b int64) string { return fmt.Sprintf("%s hash bucket %d of %d", label, b, n) },
		where:    func(b int64) string { return fmt.Sprintf("%s = %d", expr, b) },
		keySQL:   keyText,
		label:    label + " (hash buckets)",
	}, nil
}

// intBuckets splits [lo, hi] into n contiguous ranges of the key; rows outside
// (only on the target) fall into buckets -1 and n.
func intBuckets(col, name string, lo, hi, n int64, keyText string) *bucketing {
	span := new(big.Int).Sub(big.NewInt(hi), big.NewInt(lo))
	span.Add(span, big.NewInt(1))
	step := new(big.Int).Div(new(big.Int).Add(span, big.NewInt(n-1)), big.NewInt(n))
	if !step.IsInt64() {
		step = big.NewInt(math.MaxInt64)
	}
	st := step.Int64()
	// k - lo (never negative here) fits in int8 when the key's whole span does;
	// otherwise the division goes through numeric.
	bucket := fmt.Sprintf("(%s - (%d)::int8) / %d", col, lo, st)
	if !span.IsInt64() {
		bucket = fmt.Sprintf("floor((%s::numeric - %d) / %d)::int8", col, lo, st)
	}
	expr := fmt.Sprintf("CASE WHEN %s < %d THEN -1 WHEN %s > %d THEN %d ELSE %s END", col, lo, col, hi, n, bucket)
	bound := func(b int64) *big.Int {
		v := new(big.Int).Mul(big.NewInt(b), step)
		return v.Add(v, big.NewInt(lo))
	}
	return &bucketing{
		expr: expr,
		describe: func(b int64) string {
			switch {
			case b < 0:
				return fmt.Sprintf("%s < %d", name, lo)
			case b >= n:
				return fmt.Sprintf("%s > %d", name, hi)
			}
			return fmt.Sprintf("%s in [%s, %s)", name, bound(b), bound(b+1))
		},
		where: func(b int64) string {
			switch {
			case b < 0:
				return fmt.Sprintf("%s < %d", col, lo)
			case b >= n:
				return fmt.Sprintf("%s > %d", col, hi)
			}
			return fmt.Sprintf("%s >= %s AND %s < %s", col, bound(b), col, bound(b+1))
		},
		keySQL: keyText,
		label:  name + " (ranges)",
	}
}

// drillDown names up to five keys whose rows differ within one bucket.
func (s *sides) drillDown(ctx context.Context, j job, b *bucketing, id int64, srcWhere string) ([]string, error) {
	cond := b.where(id)
	q := func(extra string) string {
		w := " WHERE " + cond
		if extra != "" {
			w += " AND (" + strings.TrimPrefix(extra, " WHERE ") + ")"
		}
		return fmt.Sprintf("SELECT %s, pg_catalog.hashtextextended(t::text, 0) FROM ONLY %s t%s", b.keySQL, j.table.Name.Quoted(), w)
	}
	load := func(conn *pgx.Conn, sql string) (map[string]int64, error) {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		m := map[string]int64{}
		for rows.Next() {
			var k string
			var h int64
			if err := rows.Scan(&k, &h); err != nil {
				return nil, err
			}
			m[k] = h
		}
		return m, rows.Err()
	}
	src, err := load(s.src, q(srcWhere))
	if err != nil {
		return nil, fmt.Errorf("source drill-down: %w", err)
	}
	dst, err := load(s.dst, q(""))
	if err != nil {
		return nil, fmt.Errorf("target drill-down: %w", err)
	}
	var keys []string
	for k, h := range src {
		th, ok := dst[k]
		switch {
		case !ok:
			keys = append(keys, k+" (missing on target)")
		case th != h:
			keys = append(keys, k+" (differs)")
		}
	}
	for k := range dst {
		if _, ok := src[k]; !ok {
			keys = append(keys, k+" (only on target)")
		}
	}
	sort.Strings(keys)
	if len(keys) > 5 {
		keys = append(keys[:5], fmt.Sprintf("+%d more", len(keys)-5))
	}
	return keys, nil
}

// tableKey returns the columns of the primary key, or of a unique index over NOT
// NULL columns, and whether it is a single integer column.
func tableKey(ctx context.Context, conn *pgx.Conn, table uint32) ([]string, bool, error) {
	rows, err := conn.Query(ctx, `
SELECT array_agg(a.attname ORDER BY k.ord), bool_and(a.atttypid IN (20, 21, 23)) AND count(*) = 1
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
  AND i.indnkeyatts = i.indnatts
GROUP BY i.indexrelid, i.indisprimary
HAVING bool_and(a.attnotnull)
ORDER BY i.indisprimary DESC, count(*), i.indexrelid
LIMIT 1`, table)
	if err != nil {
		return nil, false, fmt.Errorf("find key: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cols []string
		var isInt bool
		if err := rows.Scan(&cols, &isInt); err != nil {
			return nil, false, err
		}
		return cols, isInt, nil
	}
	return nil, false, rows.Err()
}
