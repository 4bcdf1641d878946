// Package cost estimates what a remote job costs before it runs and says
// what it cost after: the worker's instance-hours at its On-Demand price,
// its volume, and data transfer where the endpoints' addresses tell their
// region. Prices come from the AWS Price List API when the caller may read
// it (pricelist.go), else from the dated table here; every figure says
// which.
package cost

import (
	"fmt"

	"math"
	"regexp"
	"strings"
	"time"

	"github.com/replicatorhq/replicator/internal/progress"
)

// TableDate is when the built-in prices were read.
const TableDate = "2026-11-01"

// TableSource names the built-in table in output.
const TableSource = "built-in table of " + TableDate + " (us-east-1 On-Demand Linux; other regions differ by a few percent)"

// largePrice is the On-Demand Linux price per hour of each family's
// ".large" size in us-east-1; within a family, price is proportional to
// vCPUs.
var largePrice = map[string]float64{
	"t4g": 0.0672, "c6g": 0.068, "c6gd": 0.0768, "c6gn": 0.0864, "c7g": 0.0725, "c7gd": 0.0907, "c7gn": 0.1248, "c8g": 0.07976,
	"m6g": 0.077, "m6gd": 0.0904, "m7g": 0.0816, "m7gd": 0.1068, "m8g": 0.08976,
	"r6g": 0.1008, "r6gd": 0.1152, "r7g": 0.1071, "r7gd": 0.1361, "r8g": 0.11782, "x2gd": 0.167, "x8g": 0.1955,
}

// vCPUs of each Graviton size.
var vCPUs = map[string]int{"medium": 1, "large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48,
	"16xlarge": 64, "24xlarge": 96, "32xlarge": 128, "48xlarge": 192}

// TablePrice is the built-in hourly price of an instance type; false when
// the table has none.
func TablePrice(instanceType string) (float64, bool) {
	family, size, _ := strings.Cut(instanceType, ".")
	p, ok := largePrice[family]
	n, known := vCPUs[size]
	if !ok || !known {
		return 0, false
	}
	return round(p*float64(n)/2, 5), true
}

// Storage: the worker's 20 GiB gp3 volume at $0.08 per GB-month.
const (
	VolumeGiB      = 20
	gp3PerGBMonth  = 0.08
	hoursPerMonth  = 730
	interRegionGB  = 0.02 // between two regions
	crossZoneGB    = 0.01 // each way, between zones of one region
	gib            = 1 << 30
	StorageBasis   = "20 GiB gp3 volume, $0.08 per GB-month"
	TransferSource = "AWS data transfer prices of " + TableDate
)

// Throughput model of a worker: the lower of what its CPUs move (replicator,
// pg_dump and pg_restore on the worker; PerVCPUBytes measured by the
// benchmark) and its network baseline (about 0.47 Gbit/s per vCPU for
// Graviton sizes up to 16xlarge; bursts above it are not counted on). The
// network bounds it at every size: a copy costs the client little CPU.
const (
	// PerVCPUBytes is the client-side rate per vCPU, in bytes of database
	// size (what the estimate is given) per CPU-second:
	// `go run ./tools/benchmark -shape reference -only replicator`
	// (2026-11-27) measured 2.3 CPU-seconds of replicator, pg_dump and
	// pg_restore for the 1316 MiB database, 574 MiB per second.
	PerVCPUBytes = 570 << 20
	// NetPerVCPUBytes is the network baseline per vCPU (c7g.large: 0.937
	// Gbit/s for 2 vCPUs).
	NetPerVCPUBytes = 58_000_000
)

// Throughput is the modelled bytes per second of a worker of this type.
func Throughput(instanceType string) float64 {
	_, size, _ := strings.Cut(instanceType, ".")
	n := vCPUs[size]
	if n == 0 {
		n = 2
	}
	return math.Min(float64(n)*PerVCPUBytes, float64(n)*NetPerVCPUBytes)
}

// Estimate is what a job is expected to cost.
type Estimate struct {
	InstanceType string  `json:"instance_type"`
	HourlyUSD    float64 `json:"hourly_usd"`
	PriceSource  string  `json:"price_source"`
	// PriceKnown is false for a type the table lacks (the instance's share
	// is then left out of the total, and --max-cost cannot be checked).
	PriceKnown bool  `json:"price_known"`
	Bytes      int64 `json:"bytes"`
	// Hours is 0 when the size is unknown (the source was not reachable
	// from where the estimate was made).
	Hours         float64 `json:"hours"`
	DurationBasis string  `json:"duration_basis"`
	InstanceUSD   float64 `json:"instance_usd"`
	StorageUSD    float64 `json:"storage_usd"`
	// TransferUSD is the most data transfer can cost; TransferKnown false
	// when an endpoint's region cannot be told (outside AWS, or a name
	// that does not say).
	TransferUSD   float64 `json:"transfer_usd"`
	TransferKnown bool    `json:"transfer_known"`
	TransferNote  string  `json:"transfer_note"`
	TotalUSD      float64 `json:"total_usd"`
}

// Input is what an estimate is made from.
type Input struct {
	InstanceType string
	// Region is the platform's (where the worker runs).
	Region     string
	Bytes      int64
	SourceHost string
	TargetHost string
	// HourlyUSD overrides the table's price (from the Price List API).
	HourlyUSD   float64
	PriceSource string
}

// Make estimates a job.
func Make(in Input) Estimate {
	e := Estimate{InstanceType: in.InstanceType, Bytes: in.Bytes, PriceSource: TableSource}
	e.HourlyUSD, e.PriceKnown = TablePrice(in.InstanceType)
	if in.HourlyUSD > 0 {
		e.HourlyUSD, e.PriceKnown, e.PriceSource = in.HourlyUSD, true, in.PriceSource
	}
	if !e.PriceKnown {
		e.PriceSource = "no price for " + in.InstanceType + " in the " + TableSource
	}
	rate := Throughput(in.InstanceType)
	if in.Bytes > 0 {
		// Start-up (boot, client tools, schema) costs a few minutes whatever the size.
		e.Hours = round(float64(in.Bytes)/rate/3600+startupHours, 3)
		e.DurationBasis = fmt.Sprintf("%s at %s/s (the lower of %s/s per vCPU measured by the benchmark and the type's network baseline), plus %d minutes to start; a slower source or target makes it longer",
			progress.Bytes(in.Bytes), progress.Bytes(int64(rate)), progress.Bytes(PerVCPUBytes), int(startupHours*60))
	} else {
		e.DurationBasis = "unknown: the source's size could not be read from here"
	}
	e.InstanceUSD = round(e.HourlyUSD*e.Hours, 4)
	e.StorageUSD = round(VolumeGiB*gp3PerGBMonth/hoursPerMonth*e.Hours, 4)
	e.TransferUSD, e.TransferKnown, e.TransferNote = transfer(in)
	e.TotalUSD = round(e.InstanceUSD+e.StorageUSD+e.TransferUSD, 2)
	return e
}

const startupHours = 5.0 / 60

// WithPrice is the estimate at another hourly price (the Price List API's).
func (e Estimate) WithPrice(hourlyUSD float64, source string) Estimate {
	e.HourlyUSD, e.PriceKnown, e.PriceSource = hourlyUSD, true, source
	e.InstanceUSD = round(e.HourlyUSD*e.Hours, 4)
	e.TotalUSD = round(e.InstanceUSD+e.StorageUSD+e.TransferUSD, 2)
	return e
}

// Lines says the estimate for people, one line per part.
func (e Estimate) Lines() []string {
	var out []string
	if e.PriceKnown {
		out = append(out, fmt.Sprintf("worker:   %s at $%.4f/h (%s)", e.InstanceType, e.HourlyUSD, e.PriceSource))
	} else {
		out = append(out, fmt.Sprintf("worker:   %s, price unknown (%s)", e.InstanceType, e.PriceSource))
	}
	if e.Hours > 0 {
		out = append(out, fmt.Sprintf("duration: about %s (%s)", hours(e.Hours), e.DurationBasis))
		out = append(out, fmt.Sprintf("storage:  $%.4f (%s)", e.StorageUSD, StorageBasis))
	} else {
		out = append(out, "duration: "+e.DurationBasis)
	}
	if e.TransferKnown {
		out = append(out, fmt.Sprintf("transfer: at most $%.2f (%s)", e.TransferUSD, e.TransferNote))
	} else {
		out = append(out, "transfer: "+e.TransferNote)
	}
	switch {
	case e.Hours == 0 || !e.PriceKnown:
		out = append(out, "total:    unknown")
	case e.TransferKnown:
		out = append(out, fmt.Sprintf("total:    about $%.2f", e.TotalUSD))
	default:
		out = append(out, fmt.Sprintf("total:    about $%.2f, plus transfer", e.TotalUSD))
	}
	return out
}

func hours(h float64) string {
	d := time.Duration(h * float64(time.Hour)).Round(time.Minute)
	return d.String()
}

// Used is what a job actually used.
type Used struct {
	InstanceHours float64 `json:"instance_hours"`
	CostUSD       float64 `json:"cost_usd"`
	// ThroughputBytes is the average bytes per second while it ran.
	ThroughputBytes float64 `json:"throughput_bytes_per_second"`
	PriceSource     string  `json:"price_source"`
}

// Actual is the usage of a worker at hourlyUSD that ran
// from launched to ended (instance and volume; transfer is not metered
// here) and moved bytes in running.
func Actual(hourlyUSD float64, launched, ended time.Time, running time.Duration, bytes int64) Used {
	u := Used{InstanceHours: round(ended.Sub(launched).Hours(), 4), CostUSD: SoFar(hourlyUSD, launched, ended), PriceSource: TableSource}
	if running > 0 {
		u.ThroughputBytes = round(float64(bytes)/running.Seconds(), 0)
	}
	return u
}

// SoFar is what a worker at hourlyUSD has cost since launched: instance
// and volume.
func SoFar(hourlyUSD float64, launched, now time.Time) float64 {
	return round((hourlyUSD+VolumeGiB*gp3PerGBMonth/hoursPerMonth)*now.Sub(launched).Hours(), 6)
}

var rdsHost = regexp.MustCompile(`\.([a-z]{2}(?:-gov)?-[a-z]+-[0-9])\.rds\.amazonaws\.com(?:\.cn)?$`)

// RegionOf tells the AWS region of a database host by its name (RDS and
// Aurora endpoints say it), or "".
func RegionOf(host string) string {
	if m := rdsHost.FindStringSubmatch(strings.ToLower(host)); m != nil {
		return m[1]
	}
	return ""
}

// transfer prices both legs: the worker reads the source and writes the
// target.
func transfer(in Input) (float64, bool, string) {
	gb := float64(in.Bytes) / gib
	total, known := 0.0, true
	var notes []string
	for _, leg := range []struct{ side, host string }{{"source", in.SourceHost}, {"target", in.TargetHost}} {
		r := RegionOf(leg.host)
		switch {
		case r == "":
			known = false
			notes = append(notes, leg.side+": unknown (its address does not say it is in AWS; outside AWS its provider's egress rates apply)")
		case r == in.Region:
			total += gb * 2 * crossZoneGB
			notes = append(notes, fmt.Sprintf("%s: in %s, free in the worker's zone, at most $%.2f across zones", leg.side, r, gb*2*crossZoneGB))
		default:
			total += gb * interRegionGB
			notes = append(notes, fmt.Sprintf("%s: %s to %s, $%.2f/GB", leg.side, r, in.Region, interRegionGB))
		}
	}
	if in.Bytes == 0 {
		return 0, false, "unknown: the size is unknown"
	}
	return round(total, 2), known, strings.Join(notes, "; ")
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
