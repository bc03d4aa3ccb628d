/**
 * Named factories for errors only the public protocol raises. Codes are
 * apache.rocketmq.v2 Code values, as everywhere in Sluice.
 */
import { Code, SluiceError } from '../../common/errors.js';

export const protocolErrors = {
  clientIdRequired: () =>
    new SluiceError(Code.CLIENT_ID_REQUIRED, 'the x-mq-client-id header is required on this call'),
  unrecognizedClientType: (type: string) =>
    new SluiceError(Code.UNRECOGNIZED_CLIENT_TYPE, `client type '${type}' is not served`),
  conflictWithType: (why: string) => new SluiceError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, why),
  illegalKey: (why: string) =>
    new SluiceError(Code.ILLEGAL_MESSAGE_KEY, `illegal message key: ${why}`),
  illegalMessageGroup: (why: string) =>
    new SluiceError(Code.ILLEGAL_MESSAGE_GROUP, `illegal message group: ${why}`),
  bodyDigestMismatch: (type: string) =>
    new SluiceError(Code.MESSAGE_CORRUPTED, `the body does not match its ${type} digest`),
  unsupported: (what: string) =>
    new SluiceError(Code.UNSUPPORTED, `${what} is not supported by Sluice`),
  offsetNotFound: (what: string) => new SluiceError(Code.OFFSET_NOT_FOUND, what),
};
