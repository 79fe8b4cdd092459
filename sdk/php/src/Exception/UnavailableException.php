<?php

declare(strict_types=1);

namespace Emitgate\Exception;

/**
 * The gateway or its Redis could not be reached (UNAVAILABLE, ABORTED), or the
 * connection failed. Retrying later may succeed.
 */
class UnavailableException extends EmitgateException
{
}
