<?php

declare(strict_types=1);

namespace Emitgate\Exception;

/**
 * The target (the configured Socket.IO cluster) is unknown to the gateway (NOT_FOUND).
 */
class NotFoundException extends EmitgateException
{
}
