package remote

import "strings"

// OwnerOf is the owner of the jobs a caller submits, from the caller's IAM
// ARN as API Gateway gives it: the principal, not the session. An assumed
// role's session ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION)
// becomes the role's (arn:aws:sts::ACCOUNT:assumed-role/ROLE): every
// session of one role shares its jobs and its --max-jobs-per-owner quota
// (the SDK names a new session per process, so a user's next run could not
// see their own jobs). IAM users, federated users and the root are their
// own ARNs.
func OwnerOf(arn string) string {
	const marker = ":assumed-role/"
	i := strings.Index(arn, marker)
	if !strings.HasPrefix(arn, "arn:") || i < 0 {
		return arn
	}
	role, _, ok := strings.Cut(arn[i+len(marker):], "/")
	if !ok || role == "" {
		return arn
	}
	return arn[:i+len(marker)] + role
}
