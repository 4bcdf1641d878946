package catalog

import "strings"

// ImportSnapshot is the statement that makes a repeatable-read transaction
// read in an exported snapshot; it must come before the transaction's first
// read.
func ImportSnapshot(snapshot string) string {
	return "SET TRANSACTION SNAPSHOT '" + strings.ReplaceAll(snapshot, "'", "''") + "'"
}
