package api_test

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/internal/remote"
)

// POST /jobs?dry_run=true answers what the job would run on and cost, and
// creates nothing; a --max-cost below the estimate, or one that cannot be
// kept (a type without a price), is refused before anything is created.
func TestQuoteAndMaxCost(t *testing.T) {
	ctx := context.Background()
	alice := apiAs(t, "alice")
	before, _, err := alice.List(ctx, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	req := &remote.Request{Command: "init", Source: "postgres://u:pw@old.abc.us-west-2.rds.amazonaws.com/shop", Target: "postgres://u:pw@new.abc.us-east-1.rds.amazonaws.com/shop",
		Options: remote.Options{SourceBytes: 50 << 30}}
	q, err := alice.Quote(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e := q.Estimate
	if q.InstanceType == "" || !e.PriceKnown || e.Hours <= 0 || !e.TransferKnown || e.TransferUSD != 2 || e.TotalUSD <= 0 {
		t.Errorf("quote %+v", q)
	}
	req.Options.MaxCostUSD = 0.01
	_, err = alice.Submit(ctx, req)
	apiError(t, err, 400, "options.max_cost_usd: the estimate is $")
	req.Options.MaxCostUSD, req.Options.InstanceType = 1000, "c7gb.large"
	_, err = alice.Submit(ctx, req)
	apiError(t, err, 400, "no price is known for c7gb.large, so a cost limit cannot be kept")
	after, _, _ := alice.List(ctx, 100, "")
	if len(after) != len(before) {
		t.Errorf("jobs were created: %d -> %d", len(before), len(after))
	}
	// Within the limit, the job records its price.
	req.Options.InstanceType = ""
	j, err := alice.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Cancel(ctx, j.ID)
	if j.HourlyUSD != e.HourlyUSD || j.Options.MaxCostUSD != 1000 {
		t.Errorf("job %+v", j)
	}
}
