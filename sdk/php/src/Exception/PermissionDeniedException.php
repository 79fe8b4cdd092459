<?php

declare(strict_types=1);

namespace Emitgate\Exception;

/**
 * The API key may not do this call (PERMISSION_DENIED).
 */
class PermissionDeniedException extends EmitgateException
{
}
