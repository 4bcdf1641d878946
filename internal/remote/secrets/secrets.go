// Package secrets keeps each job's connection URLs in a Secrets Manager secret
// of its own (encrypted with the platform's KMS key), so that no job record,
// log or response ever holds them. The secret is deleted when the job ends.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Store keeps job secrets under Prefix, tagged with the stack and the job.
// A worker may read a secret only once it is tagged with that worker's
// instance (TagInstance), which its IAM policy compares with the caller.
type Store struct {
	SM       *secretsmanager.Client
	Stack    string
	Prefix   string // e.g. "replicator/prod/jobs/"
	KMSKeyID string // optional customer-managed key
}

// Create stores a job's URLs and returns the secret's ARN.
func (s *Store) Create(ctx context.Context, jobID string, sec remote.Secret) (string, error) {
	b, err := json.Marshal(sec)
	if err != nil {
		return "", err
	}
	in := &secretsmanager.CreateSecretInput{
		Name:         aws.String(s.Prefix + jobID),
		SecretString: aws.String(string(b)),
		Description:  aws.String("connection URLs of replicator job " + jobID),
		Tags: []types.Tag{{Key: aws.String(stacknames.TagJob), Value: aws.String(jobID)},
			{Key: aws.String(stacknames.TagStack), Value: aws.String(s.Stack)}},
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

// TagInstance names the worker instance (its ARN) allowed to read the job's
// secret; a relaunch re-tags it for the new instance.
func (s *Store) TagInstance(ctx context.Context, jobID, instanceARN string) error {
	_, err := s.SM.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(s.Prefix + jobID),
		Tags: []types.Tag{{Key: aws.String(stacknames.TagInstance), Value: aws.String(instanceARN)}}})
	if err != nil {
		return fmt.Errorf("hand the job's secret to its worker: %w", err)
	}
	return nil
}

// Has reports whether the job's secret exists.
func (s *Store) Has(ctx context.Context, jobID string) (bool, error) {
	_, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Prefix + jobID)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return false, nil
	}
	return err == nil, err
}

// List lists the job ids of every secret of the stack (teardown removes
// what a crash left).
func (s *Store) List(ctx context.Context) ([]string, error) {
	p := secretsmanager.NewListSecretsPaginator(s.SM, &secretsmanager.ListSecretsInput{Filters: []types.Filter{
		{Key: types.FilterNameStringTypeTagKey, Values: []string{stacknames.TagStack}},
		{Key: types.FilterNameStringTypeTagValue, Values: []string{s.Stack}},
	}})
	var ids []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list job secrets: %w", err)
		}
		for _, sec := range page.SecretList {
			name := aws.ToString(sec.Name)
			if strings.HasPrefix(name, s.Prefix) && stackTagged(sec.Tags, s.Stack) {
				ids = append(ids, strings.TrimPrefix(name, s.Prefix))
			}
		}
	}
	return ids, nil
}

// stackTagged checks the tag itself: ListSecrets' tag filters match keys and
// values separately.
func stackTagged(tags []types.Tag, stack string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == stacknames.TagStack && aws.ToString(t.Value) == stack {
			return true
		}
	}
	return false
}

// Get reads a job's URLs.
func (s *Store) Get(ctx context.Context, jobID string) (*remote.Secret, error) {
	out, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.Prefix + jobID)})
	if err != nil {
		return nil, fmt.Errorf("read the job's connection URLs: %w", err)
	}
	var sec remote.Secret
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &sec); err != nil {
		return nil, fmt.Errorf("read the job's connection URLs: malformed secret")
	}
	return &sec, nil
}

// Delete removes a job's secret at once (no recovery window: the job is over).
// A secret already gone is fine.
func (s *Store) Delete(ctx context.Context, jobID string) error {
	_, err := s.SM.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String(s.Prefix + jobID), ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete the job's secret: %w", err)
	}
	return nil
}
