package engine

import (
	"context"
	"fmt"
)

// setSequences sets every copied sequence (serial and identity ones included) to
// its source value, in one round trip.
func (r *run) setSequences(ctx context.Context, w *dbWork) error {
	if len(w.sequences) == 0 {
		return nil
	}
	names := make([]string, len(w.sequences))
	values := make([]int64, len(w.sequences))
	called := make([]bool, len(w.sequences))
	for i, s := range w.sequences {
		names[i], values[i], called[i] = s.Name.Quoted(), s.Value, s.IsCalled
	}
	conn, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `
SELECT pg_catalog.setval(s.name::regclass, s.value, s.called)
FROM unnest($1::text[], $2::int8[], $3::bool[]) AS s(name, value, called)`, names, values, called)
	if err != nil {
		return fmt.Errorf("set sequences: %w", err)
	}
	return nil
}
