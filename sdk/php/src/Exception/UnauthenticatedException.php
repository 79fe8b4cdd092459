<?php

declare(strict_types=1);

namespace Emitgate\Exception;

/**
 * The API key is missing or not accepted (UNAUTHENTICATED).
 */
class UnauthenticatedException extends EmitgateException
{
}
