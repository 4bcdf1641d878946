package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/imagebuilder"

	"github.com/replicatorhq/replicator/internal/stacknames"
	"github.com/replicatorhq/replicator/platform"
)

// ParentImageVersion resolves the newest version of the image the worker's
// is built on (platform.ParentImage, Amazon's): GetImage takes a semantic
// version with wildcards (x.x.x) and answers the newest build that matches.
// Setup puts it into the recipe, so that the worker image is rebuilt when
// Amazon releases a new one, and only then.
func ParentImageVersion(ctx context.Context, cfg aws.Config, a *Account) (string, error) {
	partition := "aws"
	if parts := strings.SplitN(a.ARN, ":", 3); len(parts) == 3 {
		partition = parts[1]
	}
	arn := fmt.Sprintf("arn:%s:imagebuilder:%s:aws:%s/x.x.x", partition, a.Region, platform.ParentImage)
	out, err := imagebuilder.NewFromConfig(cfg).GetImage(ctx, &imagebuilder.GetImageInput{ImageBuildVersionArn: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("resolve the worker image's parent %s: %w", arn, err)
	}
	if out.Image == nil || aws.ToString(out.Image.Version) == "" {
		return "", fmt.Errorf("resolve the worker image's parent %s: no version in the answer", arn)
	}
	return aws.ToString(out.Image.Version), nil
}

// ImageURN is the URN of a stack's worker image build (setup --rebuild-image
// replaces it).
func ImageURN(stack string) string {
	return "urn:pulumi:" + stack + "::replicator::" + platform.ImageResourceType + "::" + stacknames.Of(stack).Prefix() + "-worker"
}
