package awsrds

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// credentialsExpiryWindow makes the SDK's credentials cache renew temporary
// credentials this long before they expire, so a token is never signed with
// credentials about to lapse.
const credentialsExpiryWindow = 5 * time.Minute

// Settings say how to reach AWS: the region and an optional role to assume
// on top of the default credential chain (environment, shared profile, web
// identity, ECS task role, instance profile).
type Settings struct {
	Region  string
	RoleARN string
}

// LoadConfig builds the AWS configuration for s. It reads the environment
// and the shared config files but makes no network call: credentials are
// fetched, and cached, on first use.
func LoadConfig(ctx context.Context, s Settings) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = credentialsExpiryWindow
		}),
	}
	if s.Region != "" {
		opts = append(opts, awsconfig.WithRegion(s.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, err
	}
	if s.RoleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), s.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "dbprobe" }),
			func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = credentialsExpiryWindow })
	}
	return cfg, nil
}

// Identity says who cfg's credentials belong to: the ARN STS returns for
// GetCallerIdentity when STS answers, else where the credentials came from
// and why STS did not answer. It never includes a secret.
func Identity(ctx context.Context, cfg aws.Config) string {
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Sprintf("no credentials: %v", err)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Sprintf("credentials from %s, access key %s (STS GetCallerIdentity failed: %v)", creds.Source, maskKey(creds.AccessKeyID), err)
	}
	return aws.ToString(out.Arn)
}

// maskKey shows the start of an access key id, enough to tell keys apart.
func maskKey(id string) string {
	if len(id) <= 8 {
		return "****"
	}
	return id[:8] + "****"
}
