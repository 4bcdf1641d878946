package remote

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/replicatorhq/replicator/internal/redact"
)

// DefaultInstanceType is the worker's when neither the job nor setup names
// one: Graviton compute, 2 vCPUs, up to 12.5 Gbit/s.
const DefaultInstanceType = "c7g.large"

// DefaultMaxInstanceSize is the largest size a job may ask for unless setup
// says otherwise (--max-instance-size): 16 vCPUs, about $0.58 an hour for a
// c7g in us-east-1.
const DefaultMaxInstanceSize = "4xlarge"

// Sizes a worker may have, smallest first. Smaller ones (nano to small) have
// too little memory for pg_dump and a copy's connections; metal is not
// offered.
var Sizes = []string{"medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge", "48xlarge"}

// The worker image is arm64, so workers run on Graviton only, and a caller of
// the job API may start only the general-purpose, compute and memory families
// (not storage, accelerated or HPC ones, whose price is another order):
// c6g..c8g and their d, n, b variants, m6g..m8g, r6g..r8g, t4g, x2gd, x8g.
var (
	instanceTypeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	gravitonRE     = regexp.MustCompile(`^[a-z]+[0-9]+g[a-z]*\.[a-z0-9]+$`)
	familyRE       = regexp.MustCompile(`^([cmr][6-9]g[bdn]{0,2}|t4g|x2gd|x8g)$`)
)

// familyPatterns are the families as IAM StringLike patterns: a superset of
// familyRE that matches no other instance family AWS sells (see
// TestAllowlistAndIAMPatternsAgree).
var familyPatterns = []string{"c?g*", "m?g*", "r?g*", "t4g", "x?g*"}

// CheckSize accepts a size of Sizes.
func CheckSize(size string) error {
	if !slices.Contains(Sizes, size) {
		return fmt.Errorf("%q is not a worker size: one of %s", size, strings.Join(Sizes, ", "))
	}
	return nil
}

// CheckInstanceType accepts an instance type a worker may run on: Graviton,
// of an allowed family, no larger than maxSize.
func CheckInstanceType(t, maxSize string) error {
	if !instanceTypeRE.MatchString(t) {
		return fmt.Errorf("%q is not an EC2 instance type (e.g. c7g.xlarge)", redact.Truncate(t, 40))
	}
	if !gravitonRE.MatchString(t) {
		return fmt.Errorf("%q is not arm64: the worker image runs on Graviton instance types only (e.g. c7g.xlarge, m7g.2xlarge, r7g.large)", t)
	}
	family, size, _ := strings.Cut(t, ".")
	if !familyRE.MatchString(family) {
		return fmt.Errorf("%q is not offered: workers run on Graviton general-purpose, compute and memory families (c6g-c8g, m6g-m8g, r6g-r8g with their d, n and b variants, t4g, x2gd, x8g)", t)
	}
	at := slices.Index(Sizes, size)
	if at < 0 {
		return fmt.Errorf("%q: size %s is not offered: one of %s", t, size, strings.Join(Sizes, ", "))
	}
	if at > slices.Index(Sizes, maxSize) {
		return fmt.Errorf("%q is larger than this platform allows (%s at most): choose a smaller size, or raise the limit with replicator setup --max-instance-size", t, maxSize)
	}
	return nil
}

// InstanceTypePatterns are the allowed instance types up to maxSize as IAM
// StringLike patterns, for the ec2:InstanceType condition of the API's
// RunInstances permission: the allowlist again, enforced by IAM should the
// API's own check ever be bypassed.
func InstanceTypePatterns(maxSize string) []string {
	var out []string
	for _, size := range Sizes[:slices.Index(Sizes, maxSize)+1] {
		for _, f := range familyPatterns {
			out = append(out, f+"."+size)
		}
	}
	return out
}

// MatchesPatterns tells whether t matches one of IAM StringLike patterns
// (* any run, ? one character; instance types hold no other metacharacter).
func MatchesPatterns(t string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, t); ok {
			return true
		}
	}
	return false
}

// InstanceTypeFor sizes the worker by the data to copy: the stack's default
// type, or a larger size of its family when the data is large (network and CPU
// grow with the size), never above maxSize and never below the default.
func InstanceTypeFor(defaultType, maxSize string, bytes int64) string {
	family, size, ok := strings.Cut(defaultType, ".")
	have := slices.Index(Sizes, size)
	if !ok || have < 0 {
		return defaultType
	}
	want := slices.Index(Sizes, "large")
	switch {
	case bytes >= 2<<40:
		want = slices.Index(Sizes, "4xlarge")
	case bytes >= 500<<30:
		want = slices.Index(Sizes, "2xlarge")
	case bytes >= 50<<30:
		want = slices.Index(Sizes, "xlarge")
	}
	if limit := slices.Index(Sizes, maxSize); limit >= 0 {
		want = min(want, limit)
	}
	return family + "." + Sizes[max(have, want)]
}
