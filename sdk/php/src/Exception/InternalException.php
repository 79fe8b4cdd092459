<?php

declare(strict_types=1);

namespace Emitgate\Exception;

/**
 * Any other failure (INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS,
 * ALREADY_EXISTS) or a malformed answer.
 */
class InternalException extends EmitgateException
{
}
