// Package matrix tests the copy and the sync between servers of different
// PostgreSQL majors (12 to 18), the upgrades users run: it has tests only.
// Servers come from .ci/pg-majors.sh; the client tools are the newest the
// machine has (pg_dump 18 built by that script), as a user's would be.
package matrix
