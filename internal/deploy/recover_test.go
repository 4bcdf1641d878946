package deploy

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// A state as Pulumi writes it when a replacement (create before delete) of
// the AMI build was interrupted: the old image under its URN, and the
// pending create of the new one under the same URN.
const interruptedReplacement = `{
  "manifest": {"time": "2026-12-04T10:00:00Z", "magic": "x", "version": "v3.200.0"},
  "resources": [
    {"urn": "urn:pulumi:prod::replicator::pulumi:providers:aws::default", "custom": true, "id": "p1", "type": "pulumi:providers:aws"},
    {"urn": "urn:pulumi:prod::replicator::aws:imagebuilder/image:Image::replicator-prod-worker", "custom": true,
     "id": "arn:aws:imagebuilder:us-east-1:123456789012:image/replicator-prod-worker/1.0.1/1", "type": "aws:imagebuilder/image:Image",
     "inputs": {"imageRecipeArn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/replicator-prod-worker/1.0.1"},
     "provider": "urn:pulumi:prod::replicator::pulumi:providers:aws::default::p1"}
  ],
  "pending_operations": [
    {"resource": {"urn": "urn:pulumi:prod::replicator::aws:imagebuilder/image:Image::replicator-prod-worker", "custom": true,
      "type": "aws:imagebuilder/image:Image",
      "inputs": {"imageRecipeArn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/replicator-prod-worker/1.0.2"},
      "provider": "urn:pulumi:prod::replicator::pulumi:providers:aws::default::p1"},
     "type": "creating"}
  ]
}`

// Rule (Pulumi's snapshot integrity check): at most one resource of a URN
// is live; the others must be pending deletion ("delete": true). Issue 22,
// 4: recovering an interrupted replacement appended the new image beside
// the old one, both live, and Pulumi refused the state.
func TestRecoveredReplacementKeepsOneLiveResourcePerURN(t *testing.T) {
	var d apitype.DeploymentV3
	if err := json.Unmarshal([]byte(interruptedReplacement), &d); err != nil {
		t.Fatal(err)
	}
	newID := "arn:aws:imagebuilder:us-east-1:123456789012:image/replicator-prod-worker/1.0.2/1"
	if err := recoverPending(&d, func(apitype.ResourceV3) (string, string, error) { return newID, "the build finished", nil }, io.Discard); err != nil {
		t.Fatal(err)
	}
	live := map[string][]string{}
	for _, r := range d.Resources {
		if !r.Delete {
			live[string(r.URN)] = append(live[string(r.URN)], string(r.ID))
		}
	}
	for urn, ids := range live {
		if len(ids) > 1 {
			t.Errorf("%s is live %d times: %v", urn, len(ids), ids)
		}
	}
	img := live["urn:pulumi:prod::replicator::aws:imagebuilder/image:Image::replicator-prod-worker"]
	if len(img) != 1 || img[0] != newID {
		t.Errorf("the live image is %v, want the new build", img)
	}
	if len(d.Resources) != 3 || !d.Resources[1].Delete || len(d.PendingOperations) != 0 {
		t.Errorf("the old image should stay, pending deletion, and no operation pending: %+v", d.Resources)
	}
}
