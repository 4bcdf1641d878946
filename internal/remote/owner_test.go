package remote

import "testing"

// Issue 22, 5: an owner is the session-independent principal.
func TestOwnerOf(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:sts::123456789012:assumed-role/Dev/alice-cli-1":         "arn:aws:sts::123456789012:assumed-role/Dev",
		"arn:aws:sts::123456789012:assumed-role/Dev/1733300000000000000": "arn:aws:sts::123456789012:assumed-role/Dev",
		"arn:aws-us-gov:sts::123456789012:assumed-role/Ops/s":            "arn:aws-us-gov:sts::123456789012:assumed-role/Ops",
		"arn:aws:sts::123456789012:assumed-role/Dev":                     "arn:aws:sts::123456789012:assumed-role/Dev",
		"arn:aws:iam::123456789012:user/alice":                           "arn:aws:iam::123456789012:user/alice",
		"arn:aws:iam::123456789012:user/team/alice":                      "arn:aws:iam::123456789012:user/team/alice",
		"arn:aws:sts::123456789012:federated-user/bob":                   "arn:aws:sts::123456789012:federated-user/bob",
		"arn:aws:iam::123456789012:root":                                 "arn:aws:iam::123456789012:root",
	} {
		if got := OwnerOf(in); got != want {
			t.Errorf("OwnerOf(%s) = %s, want %s", in, got, want)
		}
	}
}
