package platform

import (
	"archive/zip"
	"bytes"
	"embed"
	"errors"
	"os"
	"path/filepath"
)

// The linux/arm64 builds of the Lambda and the worker, embedded at build time.
//
//go:embed artifacts
var artifacts embed.FS

// ErrNoArtifacts means this replicator binary was built without them.
var ErrNoArtifacts = errors.New("this replicator was built without the linux/arm64 Lambda and worker it deploys: build it with `go tool task build` (it cross-compiles them and embeds them)")

// WriteArtifacts writes the Lambda's zip and the worker binary into dir and
// returns their paths.
func WriteArtifacts(dir string) (lambdaZip, worker string, err error) {
	boot, err1 := artifacts.ReadFile("artifacts/bootstrap")
	work, err2 := artifacts.ReadFile("artifacts/worker")
	if err1 != nil || err2 != nil || len(boot) == 0 || len(work) == 0 {
		return "", "", ErrNoArtifacts
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return "", "", err
	}
	if _, err := w.Write(boot); err != nil {
		return "", "", err
	}
	if err := zw.Close(); err != nil {
		return "", "", err
	}
	lambdaZip, worker = filepath.Join(dir, "lambda.zip"), filepath.Join(dir, "worker")
	if err := os.WriteFile(lambdaZip, buf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return lambdaZip, worker, os.WriteFile(worker, work, 0o755)
}
