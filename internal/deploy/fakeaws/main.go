// Command fakeaws is a test-only stand-in for the pulumi-resource-aws provider
// plugin, which cannot be fetched offline. It accepts every resource, records
// each operation (type, name, op) as a JSON line in $FAKEAWS_LOG, and returns
// the inputs plus plausible computed outputs (ids, ARNs, the API's URL, the AMI).
// Built as "pulumi-resource-aws" and put first on PATH, the Pulumi engine uses
// it in place of the real provider.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const version = "6.83.4"

func main() {
	if err := provider.Main("aws", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &fake{}, nil
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type fake struct {
	pulumirpc.UnimplementedResourceProviderServer
	mu sync.Mutex
}

func (f *fake) record(op, urn string) {
	path := os.Getenv("FAKEAWS_LOG")
	if path == "" {
		return
	}
	parts := strings.Split(urn, "::")
	typ, name := parts[len(parts)-2], parts[len(parts)-1]
	if i := strings.LastIndex(typ, "$"); i >= 0 {
		typ = typ[i+1:]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer file.Close()
	b, _ := json.Marshal(map[string]string{"op": op, "type": typ, "name": name})
	file.Write(append(b, '\n'))
}

func (f *fake) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (f *fake) Handshake(context.Context, *pulumirpc.ProviderHandshakeRequest) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true, AcceptOutputs: true}, nil
}

func (f *fake) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"aws","version":"` + version + `"}`}, nil
}

func (f *fake) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (f *fake) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (f *fake) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true, AcceptOutputs: true}, nil
}

func (f *fake) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (f *fake) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds := withoutComputed(req.GetOldInputs())
	if olds == nil {
		olds = withoutComputed(req.GetOlds())
	}
	if proto.Equal(olds, withoutComputed(req.GetNews())) {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME}, nil
}

func withoutComputed(s *structpb.Struct) *structpb.Struct {
	if s == nil {
		return nil
	}
	c := proto.Clone(s).(*structpb.Struct)
	for _, k := range computedKeys {
		delete(c.Fields, k)
	}
	return c
}

var computedKeys = []string{"id", "arn", "name", "bucket", "invokeUrl", "executionArn", "invokeArn", "keyId", "outputResources", "apiEndpoint", "latestVersion"}

func (f *fake) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if !req.GetPreview() {
		f.record("create", req.GetUrn())
	}
	props, id := outputs(req.GetUrn(), req.GetProperties())
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (f *fake) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (f *fake) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if !req.GetPreview() {
		f.record("update", req.GetUrn())
	}
	props, _ := outputs(req.GetUrn(), req.GetNews())
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (f *fake) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	f.record("delete", req.GetUrn())
	return &emptypb.Empty{}, nil
}

func (f *fake) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	var ret map[string]any
	switch req.GetTok() {
	case "aws:index/getRegion:getRegion":
		ret = map[string]any{"name": "us-east-1", "id": "us-east-1", "description": "US East (N. Virginia)", "endpoint": "ec2.us-east-1.amazonaws.com"}
	case "aws:index/getCallerIdentity:getCallerIdentity":
		ret = map[string]any{"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/admin", "userId": "AIDAEXAMPLE", "id": "123456789012"}
	case "aws:index/getPartition:getPartition":
		ret = map[string]any{"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
	default:
		ret = map[string]any{}
	}
	s, err := structpb.NewStruct(ret)
	return &pulumirpc.InvokeResponse{Return: s}, err
}

func (f *fake) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// outputs are the inputs with the values AWS would compute.
func outputs(urn string, in *structpb.Struct) (*structpb.Struct, string) {
	out := proto.Clone(in).(*structpb.Struct)
	if out.Fields == nil {
		out.Fields = map[string]*structpb.Value{}
	}
	parts := strings.Split(urn, "::")
	typ, name := parts[len(parts)-2], parts[len(parts)-1]
	id := name + "-id"
	set := func(k string, v any) {
		if _, ok := out.Fields[k]; !ok {
			val, _ := structpb.NewValue(v)
			out.Fields[k] = val
		}
	}
	svc := strings.Split(strings.TrimPrefix(typ[strings.LastIndex(typ, "$")+1:], "aws:"), "/")[0]
	set("arn", "arn:aws:"+svc+":us-east-1:123456789012:"+name)
	set("name", name)
	set("id", id)
	switch {
	case strings.HasSuffix(typ, "aws:s3/bucketV2:BucketV2"):
		set("bucket", name+"-bucket")
	case strings.HasSuffix(typ, "aws:kms/key:Key"):
		set("keyId", "key-"+name)
	case strings.HasSuffix(typ, "aws:apigatewayv2/api:Api"):
		set("executionArn", "arn:aws:execute-api:us-east-1:123456789012:fakeapi")
		set("apiEndpoint", "https://fakeapi.execute-api.us-east-1.amazonaws.com")
	case strings.HasSuffix(typ, "aws:apigatewayv2/stage:Stage"):
		set("invokeUrl", "https://fakeapi.execute-api.us-east-1.amazonaws.com/")
	case strings.HasSuffix(typ, "aws:lambda/function:Function"):
		set("invokeArn", "arn:aws:apigateway:us-east-1:lambda:path/functions/"+name+"/invocations")
	case strings.HasSuffix(typ, "aws:cloudwatch/logGroup:LogGroup"):
		logName := name
		if v, ok := in.Fields["name"]; ok {
			logName = v.GetStringValue()
		}
		val, _ := structpb.NewValue("arn:aws:logs:us-east-1:123456789012:log-group:" + logName + ":*")
		out.Fields["arn"] = val
	case strings.HasSuffix(typ, "aws:ec2/launchTemplate:LaunchTemplate"):
		set("latestVersion", 1)
	case strings.HasSuffix(typ, "aws:imagebuilder/image:Image"):
		set("outputResources", []any{map[string]any{"amis": []any{map[string]any{"image": "ami-0fake00000000000", "region": "us-east-1"}}}})
	}
	return out, id
}
