package redisstate

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// roundTripHook times every command and pipeline of a client.
type roundTripHook func(time.Duration)

var _ redis.Hook = roundTripHook(nil)

func (h roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h(time.Since(start))
		return err
	}
}

func (h roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h(time.Since(start))
		return err
	}
}
