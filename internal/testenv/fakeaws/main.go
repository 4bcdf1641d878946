// Command fakeaws is a test-only stand-in for the pulumi-resource-aws provider
// plugin, which cannot be fetched offline. Built as "pulumi-resource-aws" and
// put first on PATH, the Pulumi engine uses it in place of the real provider.
//
// It keeps the rules of AWS and of the real provider that the platform relies
// on, so that the offline setup tests fail where a real setup would:
//   - names are given as the provider's bridge gives them (logical name, a
//     dash and 7 hex characters, kept across updates), with the bridge's and
//     AWS's length limits (a bucket prefix of at most 37 characters, ...);
//   - a named resource exists once: creating it again fails with "already
//     exists" (the registry in $FAKEAWS_STATE outlives a run, as AWS does);
//   - Image Builder components and recipes are replaced, never updated, and
//     their name and version may not be reused;
//   - Read of an id returns the resource, or nothing when it does not exist
//     (refresh and import rely on it).
//
// Every operation (op, type, name, inputs) is logged as a JSON line in
// $FAKEAWS_LOG for the tests to read.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

const (
	version = "6.83.4"
	account = "123456789012"
)

func main() {
	if err := provider.Main("aws", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &fake{region: "us-east-1"}, nil
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type fake struct {
	pulumirpc.UnimplementedResourceProviderServer
	mu     sync.Mutex
	region string
}

// autoname is the bridge's autonaming of a type: the input holding the name
// and the longest name it makes (pulumi-aws provider/resources.go).
type autoname struct {
	field string
	max   int
	lower bool
}

var autonames = map[string]autoname{
	"aws:iam/role:Role":                                                        {field: "name", max: 64},
	"aws:iam/instanceProfile:InstanceProfile":                                  {field: "name", max: 255},
	"aws:iam/rolePolicy:RolePolicy":                                            {field: "name", max: 255},
	"aws:cloudwatch/eventRule:EventRule":                                       {field: "name", max: 64},
	"aws:cloudwatch/eventTarget:EventTarget":                                   {field: "targetId", max: 255},
	"aws:ec2/securityGroup:SecurityGroup":                                      {field: "name", max: 255},
	"aws:ec2/launchTemplate:LaunchTemplate":                                    {field: "name", max: 255},
	"aws:apigatewayv2/api:Api":                                                 {field: "name", max: 255},
	"aws:lambda/function:Function":                                             {field: "name", max: 64},
	"aws:lambda/permission:Permission":                                         {field: "statementId", max: 100},
	"aws:dynamodb/table:Table":                                                 {field: "name", max: 255},
	"aws:cloudwatch/logGroup:LogGroup":                                         {field: "name", max: 255},
	"aws:s3/bucketV2:BucketV2":                                                 {field: "bucket", max: 63, lower: true},
	"aws:imagebuilder/component:Component":                                     {field: "name", max: 255},
	"aws:imagebuilder/imageRecipe:ImageRecipe":                                 {field: "name", max: 255},
	"aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration": {field: "name", max: 255},
	"aws:imagebuilder/distributionConfiguration:DistributionConfiguration":     {field: "name", max: 255},
}

// limits are the upstream provider's validations of names (Terraform
// ValidateFuncs), which fail at preview.
var limits = map[string]map[string]int{
	"aws:s3/bucketV2:BucketV2":                 {"bucket": 63, "bucketPrefix": 37},
	"aws:iam/role:Role":                        {"name": 64, "namePrefix": 38},
	"aws:iam/instanceProfile:InstanceProfile":  {"name": 128},
	"aws:iam/rolePolicy:RolePolicy":            {"name": 128},
	"aws:cloudwatch/eventTarget:EventTarget":   {"targetId": 64},
	"aws:ec2/launchTemplate:LaunchTemplate":    {"name": 125, "namePrefix": 99},
	"aws:imagebuilder/component:Component":     {"name": 126},
	"aws:imagebuilder/imageRecipe:ImageRecipe": {"name": 128},
}

// replaced are the types every change of which replaces (ForceNew upstream).
var replaced = map[string]bool{
	"aws:imagebuilder/component:Component": true, "aws:imagebuilder/imageRecipe:ImageRecipe": true, "aws:imagebuilder/image:Image": true,
}

func typeAndName(urn string) (string, string) {
	parts := strings.Split(urn, "::")
	typ, name := parts[len(parts)-2], parts[len(parts)-1]
	if i := strings.LastIndex(typ, "$"); i >= 0 {
		typ = typ[i+1:]
	}
	return typ, name
}

func (f *fake) log(op, urn string, inputs *structpb.Struct) {
	path := os.Getenv("FAKEAWS_LOG")
	if path == "" {
		return
	}
	typ, name := typeAndName(urn)
	f.mu.Lock()
	defer f.mu.Unlock()
	file, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer file.Close()
	entry := map[string]any{"op": op, "type": typ, "name": name}
	if inputs != nil {
		entry["inputs"] = inputs.AsMap()
	}
	b, _ := json.Marshal(entry)
	file.Write(append(b, '\n'))
}

// registry is what exists "in AWS": physical key -> id and properties.
type entry struct {
	ID    string         `json:"id"`
	Type  string         `json:"type"`
	Props map[string]any `json:"props"`
}

func (f *fake) load() map[string]entry {
	reg := map[string]entry{}
	if path := os.Getenv("FAKEAWS_STATE"); path != "" {
		if b, err := os.ReadFile(path); err == nil {
			json.Unmarshal(b, &reg)
		}
	}
	return reg
}

func (f *fake) save(reg map[string]entry) {
	if path := os.Getenv("FAKEAWS_STATE"); path != "" {
		b, _ := json.Marshal(reg)
		os.WriteFile(path, b, 0o644)
	}
}

func str(s *structpb.Struct, k string) string {
	if s == nil {
		return ""
	}
	return s.GetFields()[k].GetStringValue()
}

// physical is the key under which AWS knows a resource (empty: it has no
// name of its own, so creating it twice is no conflict).
func physical(typ string, in *structpb.Struct) string {
	switch typ {
	case "aws:imagebuilder/component:Component", "aws:imagebuilder/imageRecipe:ImageRecipe":
		return typ + "/" + strings.ToLower(str(in, "name")) + "/" + str(in, "version")
	case "aws:iam/rolePolicy:RolePolicy":
		return typ + "/" + str(in, "role") + ":" + str(in, "name")
	case "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
		return typ + "/" + str(in, "role") + "/" + str(in, "policyArn")
	case "aws:cloudwatch/eventTarget:EventTarget":
		return typ + "/" + str(in, "rule") + "/" + str(in, "targetId")
	case "aws:lambda/permission:Permission":
		return typ + "/" + str(in, "function") + "/" + str(in, "statementId")
	}
	if a, ok := autonames[typ]; ok {
		if n := str(in, a.field); n != "" {
			return typ + "/" + n
		}
	}
	if typ == "aws:kms/alias:Alias" {
		return typ + "/" + str(in, "name")
	}
	return ""
}

// id is the id the real provider gives (what `pulumi import` takes).
func (f *fake) id(typ, name string, in *structpb.Struct) string {
	arn := func(kind string) string {
		return "arn:aws:imagebuilder:" + f.region + ":" + account + ":" + kind
	}
	switch typ {
	case "aws:imagebuilder/component:Component":
		return arn("component/" + strings.ToLower(str(in, "name")) + "/" + str(in, "version") + "/1")
	case "aws:imagebuilder/imageRecipe:ImageRecipe":
		return arn("image-recipe/" + strings.ToLower(str(in, "name")) + "/" + str(in, "version"))
	case "aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration":
		return arn("infrastructure-configuration/" + strings.ToLower(str(in, "name")))
	case "aws:imagebuilder/distributionConfiguration:DistributionConfiguration":
		return arn("distribution-configuration/" + strings.ToLower(str(in, "name")))
	case "aws:imagebuilder/image:Image":
		return strings.Replace(str(in, "imageRecipeArn"), ":image-recipe/", ":image/", 1) + "/1"
	}
	if k := physical(typ, in); k != "" && typ != "aws:ec2/launchTemplate:LaunchTemplate" && typ != "aws:ec2/securityGroup:SecurityGroup" {
		return strings.TrimPrefix(k, typ+"/")
	}
	b := make([]byte, 4)
	rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
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

func (f *fake) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	if r := req.GetVariables()["aws:config:region"]; r != "" {
		f.region = r
	} else if r := str(req.GetArgs(), "region"); r != "" {
		f.region = r
	}
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true, AcceptOutputs: true}, nil
}

// Check names resources as the bridge does and applies the name limits.
func (f *fake) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ, name := typeAndName(req.GetUrn())
	news := proto.Clone(req.GetNews()).(*structpb.Struct)
	if news.Fields == nil {
		news.Fields = map[string]*structpb.Value{}
	}
	if a, ok := autonames[typ]; ok && str(news, a.field) == "" && str(news, a.field+"Prefix") == "" && (a.field != "bucket" || str(news, "bucketPrefix") == "") {
		n := str(req.GetOlds(), a.field)
		if n == "" {
			if len(name)+8 > a.max {
				return nil, fmt.Errorf("could not make instance of '%s': name '%s-' plus 7 random chars is longer than maximum length %d", typ, name, a.max)
			}
			b := make([]byte, 4)
			rand.Read(b)
			n = name + "-" + hex.EncodeToString(b)[:7]
			if a.lower {
				n = strings.ToLower(n)
			}
		}
		news.Fields[a.field] = structpb.NewStringValue(n)
	}
	var failures []*pulumirpc.CheckFailure
	for field, max := range limits[typ] {
		if v := str(news, field); len(v) > max {
			failures = append(failures, &pulumirpc.CheckFailure{Property: field,
				Reason: fmt.Sprintf("%q cannot be longer than %d characters: %q", field, max, v)})
		}
	}
	return &pulumirpc.CheckResponse{Inputs: news, Failures: failures}, nil
}

func (f *fake) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	typ, _ := typeAndName(req.GetUrn())
	olds := withoutComputed(req.GetOldInputs())
	if olds == nil {
		olds = withoutComputed(req.GetOlds())
	}
	news := withoutComputed(req.GetNews())
	if proto.Equal(olds, news) {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME}
	if replaced[typ] {
		for k, v := range news.GetFields() {
			if k != "tags" && k != "tagsAll" && !proto.Equal(v, olds.GetFields()[k]) {
				resp.Replaces = append(resp.Replaces, k)
			}
		}
	}
	return resp, nil
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

var computedKeys = []string{"id", "arn", "invokeUrl", "executionArn", "invokeArn", "keyId", "outputResources", "apiEndpoint", "latestVersion", "__defaults"}

func (f *fake) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ, name := typeAndName(req.GetUrn())
	props, id := f.outputs(typ, name, req.GetProperties(), "")
	if req.GetPreview() {
		return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
	}
	f.mu.Lock()
	reg := f.load()
	key := physical(typ, req.GetProperties())
	if key == "" {
		key = typ + "/#" + id
	}
	if typ == "aws:imagebuilder/image:Image" {
		// Image Builder numbers the builds of one recipe version: another
		// build of it (a replacement, setup --rebuild-image) is /2, /3...
		base := strings.TrimSuffix(id, "/1")
		for n := 2; reg[key].ID != ""; n++ {
			id = fmt.Sprintf("%s/%d", base, n)
			key = typ + "/#" + id
		}
		props, _ = f.outputs(typ, name, req.GetProperties(), id)
	}
	if _, exists := reg[key]; exists {
		f.mu.Unlock()
		return nil, fmt.Errorf("creating %s (%s): already exists", typ, strings.TrimPrefix(key, typ+"/"))
	}
	reg[key] = entry{ID: id, Type: typ, Props: props.AsMap()}
	f.save(reg)
	f.mu.Unlock()
	f.log("create", req.GetUrn(), req.GetProperties())
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (f *fake) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	typ, _ := typeAndName(req.GetUrn())
	f.mu.Lock()
	reg := f.load()
	f.mu.Unlock()
	for _, e := range reg {
		if e.ID == req.GetId() && e.Type == typ {
			props, err := structpb.NewStruct(e.Props)
			if err != nil {
				return nil, err
			}
			inputs := req.GetInputs()
			if inputs == nil || len(inputs.GetFields()) == 0 {
				inputs = withoutComputed(props) // an import: the inputs are what exists
			}
			f.log("read", req.GetUrn(), nil)
			return &pulumirpc.ReadResponse{Id: e.ID, Properties: props, Inputs: inputs}, nil
		}
	}
	// Gone.
	return &pulumirpc.ReadResponse{}, nil
}

func (f *fake) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	typ, name := typeAndName(req.GetUrn())
	if replaced[typ] {
		return nil, fmt.Errorf("%s cannot be updated, only replaced", typ)
	}
	props, _ := f.outputs(typ, name, req.GetNews(), req.GetId())
	if typ == "aws:ec2/launchTemplate:LaunchTemplate" {
		// Every change of a launch template is a new version.
		props.Fields["latestVersion"] = structpb.NewNumberValue(req.GetOlds().GetFields()["latestVersion"].GetNumberValue() + 1)
	}
	if !req.GetPreview() {
		f.mu.Lock()
		reg := f.load()
		for k, e := range reg {
			if e.ID == req.GetId() && e.Type == typ {
				e.Props = props.AsMap()
				reg[k] = e
			}
		}
		f.save(reg)
		f.mu.Unlock()
		f.log("update", req.GetUrn(), req.GetNews())
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (f *fake) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	typ, _ := typeAndName(req.GetUrn())
	f.mu.Lock()
	reg := f.load()
	for k, e := range reg {
		if e.ID == req.GetId() && e.Type == typ {
			delete(reg, k)
		}
	}
	f.save(reg)
	f.mu.Unlock()
	f.log("delete", req.GetUrn(), nil)
	return &emptypb.Empty{}, nil
}

func (f *fake) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	var ret map[string]any
	switch req.GetTok() {
	case "aws:index/getRegion:getRegion":
		ret = map[string]any{"name": f.region, "id": f.region, "description": f.region, "endpoint": "ec2." + f.region + ".amazonaws.com"}
	case "aws:index/getCallerIdentity:getCallerIdentity":
		ret = map[string]any{"accountId": account, "arn": "arn:aws:iam::" + account + ":user/admin", "userId": "AIDAEXAMPLE", "id": account}
	case "aws:index/getPartition:getPartition":
		ret = map[string]any{"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
	case "aws:ec2/getVpc:getVpc":
		ret = map[string]any{"id": "vpc-0fakedefault", "default": true, "cidrBlock": "172.31.0.0/16"}
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
func (f *fake) outputs(typ, name string, in *structpb.Struct, id string) (*structpb.Struct, string) {
	out := proto.Clone(in).(*structpb.Struct)
	if out.Fields == nil {
		out.Fields = map[string]*structpb.Value{}
	}
	if id == "" {
		id = f.id(typ, name, in)
	}
	set := func(k string, v any) {
		if _, ok := out.Fields[k]; !ok {
			val, _ := structpb.NewValue(v)
			out.Fields[k] = val
		}
	}
	svc := strings.Split(strings.TrimPrefix(typ, "aws:"), "/")[0]
	if strings.HasPrefix(id, "arn:") {
		set("arn", id)
	}
	set("arn", "arn:aws:"+svc+":"+f.region+":"+account+":"+name)
	set("id", id)
	switch typ {
	case "aws:kms/key:Key":
		set("keyId", "key-"+name)
	case "aws:apigatewayv2/api:Api":
		set("executionArn", "arn:aws:execute-api:"+f.region+":"+account+":fakeapi")
		set("apiEndpoint", "https://fakeapi.execute-api."+f.region+".amazonaws.com")
	case "aws:apigatewayv2/stage:Stage":
		set("invokeUrl", "https://fakeapi.execute-api."+f.region+".amazonaws.com/")
	case "aws:lambda/function:Function":
		set("invokeArn", "arn:aws:apigateway:"+f.region+":lambda:path/functions/"+name+"/invocations")
	case "aws:cloudwatch/logGroup:LogGroup":
		out.Fields["arn"] = structpb.NewStringValue("arn:aws:logs:" + f.region + ":" + account + ":log-group:" + str(in, "name") + ":*")
	case "aws:ec2/launchTemplate:LaunchTemplate":
		set("latestVersion", 1)
	case "aws:imagebuilder/image:Image":
		set("outputResources", []any{map[string]any{"amis": []any{map[string]any{"image": "ami-0fake00000000000", "region": f.region}}}})
	}
	return out, id
}
