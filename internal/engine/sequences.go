package engine

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
)

// setSequences sets every copied sequence (serial and identity ones included) to
// its source value, in one round trip.
func (r *run) setSequences(ctx context.Context, w *dbWork) error {
	conn, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = SetSequences(ctx, conn, w.sequences, 0)
	return err
}

// SetSequences sets the target's sequences to the given values, moved on by
// margin steps in each sequence's direction (cutover's safety gap); sequences
// the target does not have are skipped. It returns how many were set.
func SetSequences(ctx context.Context, conn *pgx.Conn, seqs []catalog.Sequence, margin int64) (int, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	names := make([]string, len(seqs))
	values := make([]int64, len(seqs))
	called := make([]bool, len(seqs))
	for i, s := range seqs {
		names[i], values[i], called[i] = s.Name.Quoted(), s.Value, s.IsCalled
	}
	var n int
	err := conn.QueryRow(ctx, `
SELECT count(pg_catalog.setval(q.seqrelid, s.value OPERATOR(pg_catalog.+) $4::int8 OPERATOR(pg_catalog.*) pg_catalog.sign(q.seqincrement)::int8, s.called))
FROM unnest($1::text[], $2::int8[], $3::bool[]) AS s(name, value, called)
JOIN pg_catalog.pg_sequence q ON q.seqrelid = pg_catalog.to_regclass(s.name)`, names, values, called, margin).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("set sequences: %w", err)
	}
	return n, nil
}

// CopySequences sets the target database's sequences to the source's current
// values (logical replication does not carry them). src and dst point at the
// same database on each side.
func CopySequences(ctx context.Context, src, dst *conninfo.Endpoint) (int, error) {
	sc, err := src.Connect(ctx)
	if err != nil {
		return 0, err
	}
	defer sc.Close(context.Background())
	seqs, err := catalog.Sequences(ctx, sc)
	if err != nil {
		return 0, err
	}
	dc, err := dst.Connect(ctx)
	if err != nil {
		return 0, err
	}
	defer dc.Close(context.Background())
	return SetSequences(ctx, dc, seqs, 0)
}
