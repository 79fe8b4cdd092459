<?php

declare(strict_types=1);

namespace Emitgate\Exception;

/**
 * A rate limit or a size limit was hit (RESOURCE_EXHAUSTED); getRetryDelay() tells
 * when to retry, when the gateway said so. Also raised before sending a
 * message larger than the client's maximum message size.
 */
class ResourceExhaustedException extends EmitgateException
{
}
