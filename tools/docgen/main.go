// Command docgen writes the command reference generated from the cobra tree:
// Markdown pages into docs/reference (checked in, and checked current by
// cli/root's TestReferenceIsCurrent) and, with -man, man pages (the release
// puts them into its archives). `go tool task docs` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/replicatorhq/replicator/cli/root"
)

func main() {
	md := flag.String("md", root.ReferenceDir, "directory for the Markdown reference (empty: none)")
	man := flag.String("man", "", "directory for man pages (empty: none)")
	flag.Parse()
	if err := run(*md, *man); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

func run(md, man string) error {
	if md != "" {
		if err := root.WriteReference(md); err != nil {
			return err
		}
	}
	if man != "" {
		return root.WriteManPages(man, time.Now().UTC().Truncate(24*time.Hour))
	}
	return nil
}
