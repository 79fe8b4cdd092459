<?php

declare(strict_types=1);

namespace Emitgate\Exception;

/**
 * The call did not finish within its timeout (DEADLINE_EXCEEDED, CANCELLED).
 * The event may or may not have been published.
 */
class DeadlineExceededException extends EmitgateException
{
}
