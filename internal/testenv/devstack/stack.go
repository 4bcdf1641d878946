package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	etypes "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/lambdafn"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Region of the emulated platform.
const Region = "us-east-1"

// User is an IAM identity allowed to call the API.
type User struct {
	AccessKey, SecretKey, ARN string
	// Expired credentials are refused as API Gateway refuses an expired
	// session token (403).
	Expired bool
}

// Users the local API accepts. The platform's own identity (Lambda, workers) is
// separate.
var Users = map[string]User{
	"alice": {AccessKey: "AKIAALICEEXAMPLE0001", SecretKey: "alice-secret-key", ARN: "arn:aws:iam::123456789012:user/alice"},
	"bob":   {AccessKey: "AKIABOBEXAMPLE000002", SecretKey: "bob-secret-key", ARN: "arn:aws:iam::123456789012:user/bob"},
	"carol": {AccessKey: "ASIACAROLEXAMPLE0003", SecretKey: "carol-secret-key", ARN: "arn:aws:sts::123456789012:assumed-role/dev/carol", Expired: true},
	// Two sessions of one role (the SDK names a session per process).
	"ops-1": {AccessKey: "ASIAOPSSESSION000004", SecretKey: "ops-1-secret-key", ARN: "arn:aws:sts::123456789012:assumed-role/ops/cli-1733300000"},
	"ops-2": {AccessKey: "ASIAOPSSESSION000005", SecretKey: "ops-2-secret-key", ARN: "arn:aws:sts::123456789012:assumed-role/ops/cli-1733300999"},
}

var platformCreds = User{AccessKey: "AKIAPLATFORM00000001", SecretKey: "platform-secret-key"}

// Options of a stack.
type Options struct {
	// Stack names the emulated deployment (default "replicator"); its
	// resources get the names and tags setup would give them.
	Stack string
	// Moto, when set, is shared with other stacks (two stacks side by side in
	// one account and region); Stop then leaves it running.
	Moto *Moto
	// WorkerBin is the worker binary the launcher runs.
	WorkerBin string
	// Config overrides (timeouts kept short for tests).
	Config awsenv.Config
	// ReaperEvery is how often the reaper runs (default 2s).
	ReaperEvery time.Duration
	// WorkerLog receives the workers' stderr (default discarded).
	WorkerLog io.Writer
	// NoNotifyTargets deploys the stack without notification targets (a
	// job's --notify is then refused); by default it has the topic, which a
	// test subscribes to.
	NoNotifyTargets bool
	// Webhook, when set, is a notification webhook of the stack, as setup
	// --notify-webhook makes it: a connection, an API destination and a
	// target on the rule.
	Webhook string
	// WorkerEnv and WorkerArgs are added to every worker's environment and
	// command line (a Logs endpoint in an outage, older client tools).
	WorkerEnv, WorkerArgs []string
	Log                   *slog.Logger
}

// Stack is the running platform.
type Stack struct {
	Moto *Moto
	// Gate is where every client of the platform reaches moto (see Gate).
	Gate     *Gate
	Config   awsenv.Config
	Clients  *awsenv.Clients
	Handler  *lambdafn.Handler
	API      *APIServer
	Launcher *Launcher
	// Topic is the ARN of the stack's SNS topic of job events.
	Topic      string
	bridge     *bridge
	bridgeDone chan struct{}
	webhook    string
	ownMoto    bool
	cancel     context.CancelFunc
	done       chan struct{}
}

// Account is moto's default account id.
const Account = "123456789012"

// config is the platform's configuration, as setup would give it to the
// Lambda, with the short timeouts tests want (the production defaults wait
// minutes).
func (o *Options) config() awsenv.Config {
	cfg := o.Config
	if o.Stack == "" {
		o.Stack = "replicator"
	}
	n := stacknames.Of(o.Stack)
	cfg.Stack, cfg.Partition, cfg.Region, cfg.AccountID = o.Stack, "aws", Region, Account
	for dst, v := range map[*string]string{&cfg.Table: n.Table(), &cfg.LogGroup: n.JobsLogGroup(), &cfg.LaunchTemplate: n.LaunchTemplate(),
		&cfg.SecretPrefix: n.SecretPrefix(), &cfg.DefaultInstanceType: remote.DefaultInstanceType, &cfg.Version: "dev",
		&cfg.ArtifactsBucket: n.ArtifactsBucket(Account, Region), &cfg.WorkerKey: "worker/dev/worker",
		&cfg.MaxInstanceSize: remote.DefaultMaxInstanceSize} {
		if *dst == "" {
			*dst = v
		}
	}
	if !o.NoNotifyTargets && cfg.NotifyTargets == 0 {
		cfg.NotifyTargets = 1
	}
	for dst, v := range map[*int]int{&cfg.MaxActiveJobs: awsenv.DefaultMaxActiveJobs, &cfg.DefaultTimeLimitMinutes: 60, &cfg.MaxAttempts: awsenv.DefaultMaxAttempts,
		&cfg.MaxJobsPerOwner: awsenv.DefaultMaxJobsPerOwner, &cfg.MaxTimeLimitMinutes: remote.MaxTimeLimitMinutes} {
		if *dst == 0 {
			*dst = v
		}
	}
	for dst, v := range map[*time.Duration]time.Duration{&cfg.HeartbeatTimeout: 8 * time.Second, &cfg.ProvisionTimeout: 30 * time.Second,
		&cfg.CancelGrace: 10 * time.Second, &cfg.SubmitTimeout: 10 * time.Second} {
		if *dst == 0 {
			*dst = v
		}
	}
	return cfg
}

// Start brings the platform up.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.ReaperEvery == 0 {
		o.ReaperEvery = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	cfg := o.config()
	moto, ownMoto := o.Moto, false
	if moto == nil {
		var err error
		if moto, err = StartMoto(ctx); err != nil {
			return nil, err
		}
		ownMoto = true
	}
	s := &Stack{Moto: moto, ownMoto: ownMoto, Config: cfg, done: make(chan struct{}), webhook: o.Webhook}
	var err error
	if s.Gate, err = StartGate(moto.URL); err != nil {
		s.Stop()
		return nil, err
	}
	// The stack's own clients (provisioning, the launcher, tests' inspections)
	// are kept apart from the Lambda's, whose calls are recorded for the IAM
	// contract.
	if s.Clients, err = s.clients(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.provision(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	// The regions tests set up in (a profile's region, another's).
	for _, region := range []string{Region, "us-east-2", "eu-west-1"} {
		c := ec2.NewFromConfig(s.Clients.AWS, func(o *ec2.Options) { o.Region = region })
		if err := ShapeDefaultVPC(ctx, c); err != nil {
			s.Stop()
			return nil, fmt.Errorf("%s: %w", region, err)
		}
	}
	lambdaClients, err := s.clients(ctx, awsenv.Record("lambda"))
	if err != nil {
		s.Stop()
		return nil, err
	}
	if s.Handler, err = lambdafn.With(ctx, cfg, lambdaClients, o.Log); err != nil {
		s.Stop()
		return nil, err
	}
	if s.API, err = StartAPI(s.Handler); err != nil {
		s.Stop()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.Launcher = &Launcher{EC2: s.Clients.EC2, Stack: cfg.Stack, Bin: o.WorkerBin, Env: append(s.PlatformEnv(), o.WorkerEnv...),
		Args: o.WorkerArgs, Table: cfg.Table, Out: o.WorkerLog}
	go func() {
		defer close(s.done)
		s.loop(runCtx, o.ReaperEvery)
	}()
	if s.bridge != nil {
		s.bridgeDone = make(chan struct{})
		go func() { defer close(s.bridgeDone); s.bridge.run(runCtx) }()
	}
	return s, nil
}

// loop runs the launcher often and the reaper on its schedule.
func (s *Stack) loop(ctx context.Context, reaperEvery time.Duration) {
	launch := time.NewTicker(300 * time.Millisecond)
	defer launch.Stop()
	reap := time.NewTicker(reaperEvery)
	defer reap.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Launcher.StopAll()
			return
		case <-launch.C:
			s.Launcher.Sync(ctx)
		case <-reap.C:
			_, _ = s.Handler.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))
		}
	}
}

// Stop tears everything down.
func (s *Stack) Stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
		if s.bridgeDone != nil {
			<-s.bridgeDone
		}
	}
	if s.API != nil {
		s.API.Stop()
	}
	if s.Gate != nil {
		s.Gate.Stop()
	}
	if s.ownMoto {
		s.Moto.Stop()
	}
}

// PlatformEnv is the environment of the platform's own processes (workers).
func (s *Stack) PlatformEnv() []string {
	return append(s.Config.Env(),
		"AWS_ENDPOINT_URL="+s.Gate.URL, "AWS_ACCESS_KEY_ID="+platformCreds.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+platformCreds.SecretKey, "AWS_REGION="+Region, "AWS_EC2_METADATA_DISABLED=true",
		// The test databases are on loopback, which real workers refuse.
		"REPLICATOR_ALLOW_LOOPBACK=1",
		// Metrics every second, not every 30: a test's job is short.
		"REPLICATOR_METRICS_EVERY=1s")
}

// CallerEnv is the environment of a CLI acting as user (alice or bob).
func (s *Stack) CallerEnv(user string) []string {
	u := Users[user]
	return []string{
		"REPLICATOR_API_URL=" + s.API.URL, "AWS_ENDPOINT_URL=" + s.Gate.URL,
		"AWS_ACCESS_KEY_ID=" + u.AccessKey, "AWS_SECRET_ACCESS_KEY=" + u.SecretKey,
		"AWS_REGION=" + Region, "AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// Store is the jobs table.
func (s *Stack) Store() *store.Store { return store.New(s.Clients.DynamoDB, s.Config.Table) }

func (s *Stack) clients(ctx context.Context, extra ...func(*config.LoadOptions) error) (*awsenv.Clients, error) {
	return MotoClients(ctx, s.Gate.URL, extra...)
}

// MotoClients are AWS clients of the platform's identity for endpoint (moto,
// or something standing in front of it).
func MotoClients(ctx context.Context, endpoint string, extra ...func(*config.LoadOptions) error) (*awsenv.Clients, error) {
	opts := append([]func(*config.LoadOptions) error{config.WithRegion(Region), config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(platformCreds.AccessKey, platformCreds.SecretKey, "")),
		config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil), config.WithEC2IMDSClientEnableState(0)}, extra...)
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &awsenv.Clients{AWS: cfg, DynamoDB: dynamodb.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg), Logs: cloudwatchlogs.NewFromConfig(cfg),
		EventBridge: eventbridge.NewFromConfig(cfg), CloudWatch: awsenv.NewCloudWatch(cfg)}, nil
}

// provision creates what `replicator setup` deploys for real: the table with its
// indexes, the log group, the worker launch template.
func (s *Stack) provision(ctx context.Context) error {
	str := func(v string) *string { return &v }
	if err := s.CreateTable(ctx, s.Config.Table); err != nil {
		return err
	}
	if _, err := s.Clients.Logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: str(s.Config.LogGroup)}); err != nil {
		return fmt.Errorf("create log group: %w", err)
	}
	if err := s.provisionNotify(ctx, s.webhook); err != nil {
		return err
	}
	return s.createLaunchTemplate(ctx)
}

// CreateTable creates a jobs table with its indexes.
func (s *Stack) CreateTable(ctx context.Context, name string) error {
	str := func(v string) *string { return &v }
	_, err := s.Clients.DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   str(name),
		BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{
			{AttributeName: str("pk"), AttributeType: dtypes.ScalarAttributeTypeS}, {AttributeName: str("sk"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: str("gsi1pk"), AttributeType: dtypes.ScalarAttributeTypeS}, {AttributeName: str("gsi1sk"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: str("gsi2pk"), AttributeType: dtypes.ScalarAttributeTypeS}, {AttributeName: str("gsi2sk"), AttributeType: dtypes.ScalarAttributeTypeS},
		},
		KeySchema: []dtypes.KeySchemaElement{{AttributeName: str("pk"), KeyType: dtypes.KeyTypeHash}, {AttributeName: str("sk"), KeyType: dtypes.KeyTypeRange}},
		GlobalSecondaryIndexes: []dtypes.GlobalSecondaryIndex{
			{IndexName: str(store.OwnerIndex), Projection: &dtypes.Projection{ProjectionType: dtypes.ProjectionTypeAll},
				KeySchema: []dtypes.KeySchemaElement{{AttributeName: str("gsi1pk"), KeyType: dtypes.KeyTypeHash}, {AttributeName: str("gsi1sk"), KeyType: dtypes.KeyTypeRange}}},
			{IndexName: str(store.ActiveIndex), Projection: &dtypes.Projection{ProjectionType: dtypes.ProjectionTypeAll},
				KeySchema: []dtypes.KeySchemaElement{{AttributeName: str("gsi2pk"), KeyType: dtypes.KeyTypeHash}, {AttributeName: str("gsi2sk"), KeyType: dtypes.KeyTypeRange}}},
		},
	})
	if err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	return nil
}

func (s *Stack) createLaunchTemplate(ctx context.Context) error {
	str := func(v string) *string { return &v }
	images, err := s.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil || len(images.Images) == 0 {
		return fmt.Errorf("find an image in moto: %v", err)
	}
	_, err = s.Clients.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: str(s.Config.LaunchTemplate),
		LaunchTemplateData: &etypes.RequestLaunchTemplateData{
			ImageId:                           images.Images[0].ImageId,
			InstanceType:                      etypes.InstanceType(remote.DefaultInstanceType),
			MetadataOptions:                   &etypes.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: etypes.LaunchTemplateHttpTokensStateRequired},
			InstanceInitiatedShutdownBehavior: etypes.ShutdownBehaviorTerminate,
			TagSpecifications: []etypes.LaunchTemplateTagSpecificationRequest{{ResourceType: etypes.ResourceTypeInstance,
				Tags: []etypes.Tag{{Key: str(stacknames.TagStack), Value: str(s.Config.Stack)}, {Key: str(stacknames.TagRole), Value: str(stacknames.RoleWorker)}}}},
		},
	})
	if err != nil {
		return fmt.Errorf("create launch template: %w", err)
	}
	return nil
}
