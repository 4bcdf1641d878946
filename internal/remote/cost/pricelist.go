package cost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/pricing/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// PriceList reads On-Demand prices from the AWS Price List API (served in
// us-east-1 for the aws partition), with the caller's credentials.
type PriceList struct {
	Client *pricing.Client
}

// NewPriceList is a Price List client of cfg, in the API's region.
func NewPriceList(cfg aws.Config) *PriceList {
	// One attempt: the estimate falls back to the table rather than wait.
	return &PriceList{Client: pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.Region, o.RetryMaxAttempts = "us-east-1", 1 })}
}

// Hourly is the On-Demand Linux price of instanceType in region, and where
// it came from: the Price List API, or (when the caller may not read it,
// or it cannot be reached in a few seconds) the built-in table, with the
// reason.
func (p *PriceList) Hourly(ctx context.Context, instanceType, region string) (float64, string) {
	if p != nil && p.Client != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		price, err := p.lookup(ctx, instanceType, region)
		if err == nil {
			return price, "AWS Price List API (" + region + " On-Demand Linux)"
		}
		if tp, ok := TablePrice(instanceType); ok {
			return tp, TableSource + "; the Price List API: " + reason(err)
		}
		return 0, "no price for " + instanceType + ": not in the " + TableSource + ", and the Price List API: " + reason(err)
	}
	tp, _ := TablePrice(instanceType)
	return tp, TableSource
}

func (p *PriceList) lookup(ctx context.Context, instanceType, region string) (float64, error) {
	term := func(field, value string) types.Filter {
		return types.Filter{Type: types.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
	}
	out, err := p.Client.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(10),
		Filters: []types.Filter{term("instanceType", instanceType), term("regionCode", region), term("operatingSystem", "Linux"),
			term("tenancy", "Shared"), term("preInstalledSw", "NA"), term("capacitystatus", "Used"), term("licenseModel", "No License required")}})
	if err != nil {
		return 0, err
	}
	for _, raw := range out.PriceList {
		if price, ok := onDemand(raw); ok {
			return price, nil
		}
	}
	return 0, errors.New("no On-Demand price listed")
}

// onDemand reads the hourly USD price of a Price List product document.
func onDemand(raw string) (float64, bool) {
	var doc struct {
		Terms struct {
			OnDemand map[string]struct {
				PriceDimensions map[string]struct {
					Unit         string            `json:"unit"`
					PricePerUnit map[string]string `json:"pricePerUnit"`
				} `json:"priceDimensions"`
			} `json:"OnDemand"`
		} `json:"terms"`
	}
	if json.Unmarshal([]byte(raw), &doc) != nil {
		return 0, false
	}
	for _, term := range doc.Terms.OnDemand {
		for _, d := range term.PriceDimensions {
			if v, err := strconv.ParseFloat(d.PricePerUnit["USD"], 64); err == nil && v > 0 && (d.Unit == "Hrs" || d.Unit == "") {
				return v, true
			}
		}
	}
	return 0, false
}

// reason says briefly why the Price List API was not used.
func reason(err error) string {
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	switch {
	case errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "AccessDenied"):
		return "not allowed to these credentials (pricing:GetProducts)"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within 5 s"
	case errors.As(err, &ae):
		return "unavailable (" + ae.ErrorCode() + ")"
	case errors.As(err, &re):
		return fmt.Sprintf("unavailable (status %d)", re.HTTPStatusCode())
	default:
		return fmt.Sprintf("unavailable (%s)", firstLine(err.Error(), 80))
	}
}

func firstLine(s string, n int) string {
	for i, c := range s {
		if c == '\n' || i >= n {
			return s[:i]
		}
	}
	return s
}
