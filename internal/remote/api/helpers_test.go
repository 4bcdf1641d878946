package api_test

import (
	"io"
	"net/http"
	"strings"

	"github.com/replicatorhq/replicator/internal/filter"
)

func jobsFilter(table string) filter.Spec { return filter.Spec{IncludeTables: []string{table}} }

func bufCopy(b *strings.Builder, resp *http.Response) (int64, error) { return io.Copy(b, resp.Body) }
