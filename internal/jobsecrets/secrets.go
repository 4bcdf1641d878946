// Package jobsecrets keeps each job's connection URLs in a Secrets Manager secret
// of its own (encrypted with the platform's KMS key), so that no job record,
// log or response ever holds them. The secret is deleted when the job ends.
package jobsecrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replicatorhq/replicator/internal/jobs"
)

// Secrets stores job secrets under Prefix (the worker's IAM policy allows only
// that prefix).
type Secrets struct {
	SM       *secretsmanager.Client
	Prefix   string // e.g. "replicator/jobs/"
	KMSKeyID string // optional customer-managed key
}

// Create stores a job's URLs and returns the secret's ARN.
func (s *Secrets) Create(ctx context.Context, jobID string, sec jobs.Secret) (string, error) {
	b, err := json.Marshal(sec)
	if err != nil {
		return "", err
	}
	in := &secretsmanager.CreateSecretInput{
		Name:         aws.String(s.Prefix + jobID),
		SecretString: aws.String(string(b)),
		Description:  aws.String("connection URLs of replicator job " + jobID),
		Tags:         []types.Tag{{Key: aws.String("replicator:job-id"), Value: aws.String(jobID)}},
	}
	if s.KMSKeyID != "" {
		in.KmsKeyId = aws.String(s.KMSKeyID)
	}
	out, err := s.SM.CreateSecret(ctx, in)
	if err != nil {
		return "", fmt.Errorf("store the job's connection URLs: %w", err)
	}
	return aws.ToString(out.ARN), nil
}

// Get reads a job's URLs.
func (s *Secrets) Get(ctx context.Context, jobID string) (*jobs.Secret, error) {
	out, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.Prefix + jobID)})
	if err != nil {
		return nil, fmt.Errorf("read the job's connection URLs: %w", err)
	}
	var sec jobs.Secret
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &sec); err != nil {
		return nil, fmt.Errorf("read the job's connection URLs: malformed secret")
	}
	return &sec, nil
}

// Delete removes a job's secret at once (no recovery window: the job is over).
// A secret already gone is fine.
func (s *Secrets) Delete(ctx context.Context, jobID string) error {
	_, err := s.SM.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String(s.Prefix + jobID), ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete the job's secret: %w", err)
	}
	return nil
}
