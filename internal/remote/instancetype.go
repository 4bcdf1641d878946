package remote

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DefaultInstanceType is the worker's when neither the job nor setup names
// one: Graviton compute, 2 vCPUs, up to 12.5 Gbit/s.
const DefaultInstanceType = "c7g.large"

// The worker image is arm64, so workers run only on Graviton: families whose
// generation digit is followed by "g" (c7g, m7gd, r8g, c6gn, t4g, x2gd, im4gn).
var (
	instanceTypeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	gravitonRE     = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*\.[a-z0-9]+$`)
)

// CheckInstanceType accepts an EC2 instance type the worker image can boot.
func CheckInstanceType(t string) error {
	if !instanceTypeRE.MatchString(t) {
		return fmt.Errorf("%q is not an EC2 instance type (e.g. c7g.xlarge)", t)
	}
	if !gravitonRE.MatchString(t) {
		return fmt.Errorf("%q is not arm64: the worker image runs on Graviton instance types only (e.g. c7g.xlarge, m7g.2xlarge, r7g.large)", t)
	}
	return nil
}

// sizes the worker grows through as the data grows.
var sizes = []string{"medium", "large", "xlarge", "2xlarge", "4xlarge"}

// InstanceTypeFor sizes the worker by the data to copy: the stack's default
// type, or a larger size of its family when the data is large (network and CPU
// grow with the size). It never goes below the default.
func InstanceTypeFor(defaultType string, bytes int64) string {
	family, size, ok := strings.Cut(defaultType, ".")
	have := slices.Index(sizes, size)
	if !ok || have < 0 {
		return defaultType
	}
	want := 1 // large
	switch {
	case bytes >= 2<<40:
		want = 4
	case bytes >= 500<<30:
		want = 3
	case bytes >= 50<<30:
		want = 2
	}
	return family + "." + sizes[max(have, want)]
}
