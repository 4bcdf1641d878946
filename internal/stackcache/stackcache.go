// Package stackcache keeps, per stack, the outputs replicator setup deployed
// (the API's URL, the region, the table...) in the user's configuration
// directory, so that remote commands need no flags. It is light: the job API's
// client reads it without the deployment machinery.
package stackcache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Outputs of a deployed stack.
type Outputs struct {
	Stack          string `json:"stack"`
	Backend        string `json:"backend"`
	APIURL         string `json:"api_url"`
	Region         string `json:"region"`
	Table          string `json:"table"`
	LogGroup       string `json:"jobs_log_group"`
	Bucket         string `json:"artifacts_bucket"`
	AMI            string `json:"ami_id"`
	Version        string `json:"version"`
	LaunchTemplate string `json:"launch_template"`
	SecretsKey     string `json:"secrets_key_arn"`
}

// CacheDir is where stack outputs are cached: $XDG_CONFIG_HOME/replicator/stacks.
func CacheDir() (string, error) {
	if d := os.Getenv("REPLICATOR_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "stacks"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "replicator", "stacks"), nil
}

// Save caches a stack's outputs.
func Save(o *Outputs) error {
	dir, err := CacheDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(o, "", "  ")
	return os.WriteFile(filepath.Join(dir, o.Stack+".json"), b, 0o600)
}

// Load reads cached outputs of stack.
func Load(stack string) (*Outputs, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, stack+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no deployment %q known here: run replicator setup, or pass --api-url", stack)
	}
	if err != nil {
		return nil, err
	}
	var o Outputs
	return &o, json.Unmarshal(b, &o)
}

// Forget removes cached outputs.
func Forget(stack string) error {
	dir, err := CacheDir()
	if err != nil {
		return err
	}
	err = os.Remove(filepath.Join(dir, stack+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
