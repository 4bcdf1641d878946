package cost

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

func TestTablePrices(t *testing.T) {
	for typ, want := range map[string]float64{"c7g.large": 0.0725, "c7g.xlarge": 0.145, "c7g.medium": 0.03625, "m7g.4xlarge": 0.6528, "t4g.large": 0.0672} {
		if got, ok := TablePrice(typ); !ok || got != want {
			t.Errorf("%s: %v %v, want %v", typ, got, ok, want)
		}
	}
	for _, typ := range []string{"c7gb.large", "c7g.nano", "p5.48xlarge"} {
		if _, ok := TablePrice(typ); ok {
			t.Errorf("%s has a price", typ)
		}
	}
}

func TestRegionOf(t *testing.T) {
	for host, want := range map[string]string{
		"prod.abc123xyz.eu-west-1.rds.amazonaws.com":               "eu-west-1",
		"cluster-x.cluster-ro-abc.us-gov-west-1.rds.amazonaws.com": "us-gov-west-1",
		"db.abc.cn-north-1.rds.amazonaws.com.cn":                   "cn-north-1",
		"db.example.com":                                           "", "10.0.0.5": "", "ep-cool-1234.us-east-2.aws.neon.tech": "",
	} {
		if got := RegionOf(host); got != want {
			t.Errorf("%s: %q, want %q", host, got, want)
		}
	}
}

// The estimate of 100 GiB on a c7g.large: the network baseline (2 vCPUs ×
// 58 MB/s) bounds it; transfer is priced where both addresses tell their
// region, unknown otherwise, and the total says so.
func TestEstimate(t *testing.T) {
	in := Input{InstanceType: "c7g.large", Region: "us-east-1", Bytes: 100 << 30,
		SourceHost: "old.abc.us-west-2.rds.amazonaws.com", TargetHost: "new.abc.us-east-1.rds.amazonaws.com"}
	e := Make(in)
	wantHours := float64(100<<30)/(2*NetPerVCPUBytes)/3600 + 5.0/60
	if !e.PriceKnown || e.HourlyUSD != 0.0725 || e.Hours != round(wantHours, 3) || !e.TransferKnown {
		t.Fatalf("estimate %+v", e)
	}
	// us-west-2 to us-east-1 at $0.02/GB, and up to $0.02/GB across zones in us-east-1.
	if e.TransferUSD != 4 || e.TotalUSD != round(e.InstanceUSD+e.StorageUSD+4, 2) {
		t.Errorf("transfer %v total %v", e.TransferUSD, e.TotalUSD)
	}
	in.SourceHost = "db.example.com"
	e = Make(in)
	lines := strings.Join(e.Lines(), "\n")
	if e.TransferKnown || !strings.Contains(lines, "source: unknown") || !strings.Contains(lines, "plus transfer") || !strings.Contains(lines, TableSource) {
		t.Errorf("outside AWS:\n%s", lines)
	}
	in.Bytes = 0
	if e := Make(in); e.Hours != 0 || !strings.Contains(strings.Join(e.Lines(), "\n"), "total:    unknown") {
		t.Errorf("unknown size: %+v", e)
	}
	if e := Make(Input{InstanceType: "c7gb.large", Region: "us-east-1", Bytes: 1 << 30}); e.PriceKnown || !strings.Contains(e.PriceSource, "no price for c7gb.large") {
		t.Errorf("type without a price: %+v", e)
	}
	if e := Make(Input{InstanceType: "c7g.large", Bytes: 1 << 30}).WithPrice(0.08, "AWS Price List API (us-east-1 On-Demand Linux)"); e.HourlyUSD != 0.08 || e.InstanceUSD != round(0.08*e.Hours, 4) {
		t.Errorf("with the Price List's price: %+v", e)
	}
}

func TestActualUse(t *testing.T) {
	launched := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	u := Actual(0.0725, launched, launched.Add(2*time.Hour), 100*time.Minute, 6000<<20)
	if u.InstanceHours != 2 || u.CostUSD != round(2*(0.0725+20*0.08/730), 6) || u.ThroughputBytes != 1048576 {
		t.Errorf("used %+v", u)
	}
}

// A Price List product document (the shape GetProducts returns, trimmed)
// gives its On-Demand hourly price.
func TestPriceListDocument(t *testing.T) {
	doc := `{"product":{"attributes":{"instanceType":"c7g.large","regionCode":"eu-west-1"}},
	  "terms":{"OnDemand":{"X.JRTCKXETXF":{"priceDimensions":{"X.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","pricePerUnit":{"USD":"0.0774000000"}}}}},
	  "Reserved":{"Y":{"priceDimensions":{"Z":{"unit":"Quantity","pricePerUnit":{"USD":"300"}}}}}}}`
	if p, ok := onDemand(doc); !ok || p != 0.0774 {
		t.Errorf("price %v %v", p, ok)
	}
	if _, ok := onDemand(`{"terms":{}}`); ok {
		t.Error("a price from a document without one")
	}
}

func TestPriceListFallbackSaysWhy(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
	if r := reason(denied); !strings.Contains(r, "pricing:GetProducts") {
		t.Errorf("denied: %s", r)
	}
	if r := reason(context.DeadlineExceeded); r != "no answer within 5 s" {
		t.Errorf("timeout: %s", r)
	}
	if r := reason(errors.New("dial tcp: lookup api.pricing.us-east-1.amazonaws.com: no such host\nmore")); strings.Contains(r, "more") {
		t.Errorf("multi-line: %s", r)
	}
	var none *PriceList
	if p, src := none.Hourly(context.Background(), "c7g.large", "us-east-1"); p != 0.0725 || src != TableSource {
		t.Errorf("no client: %v %s", p, src)
	}
}
