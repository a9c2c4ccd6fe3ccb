package httpapi

import (
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/httpapi/internal/wire"
	"github.com/valyala/fasthttp"
)

// MaxBatch is the largest number of checks a batch may hold.
const MaxBatch = wire.MaxBatch

// The request decoders are package wire's; these answer what it refuses
// with 400 and its code and message.

func decodeCheck(body []byte, maxDepth int) (*pdp.Request, *apiError) {
	req, e := wire.DecodeCheck(body, maxDepth)
	return req, badBody(e)
}

// decodeBatch decodes a batch into reqs[:0] (grown if need be).
func decodeBatch(body []byte, maxDepth int, reqs []pdp.Request) ([]pdp.Request, *apiError) {
	reqs, e := wire.DecodeBatch(body, maxDepth, reqs)
	return reqs, badBody(e)
}

func decodeStrict(data []byte, dst any) *apiError { return badBody(wire.DecodeStrict(data, dst)) }

func checkDepth(data []byte, limit int) *apiError { return badBody(wire.CheckDepth(data, limit)) }

func checkPrincipal(p *pdp.Principal) *apiError { return badBody(wire.CheckPrincipal(p)) }

// badBody is the answer to a body wire refused, nil for none.
func badBody(e *wire.Error) *apiError {
	if e == nil {
		return nil
	}
	return &apiError{status: fasthttp.StatusBadRequest, code: e.Code, message: e.Message, index: e.Index, hasIndex: e.HasIndex}
}
