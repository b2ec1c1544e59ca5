/*
 * drydock_tf_devices.node: the devices the TensorFlow C library in @tensorflow/tfjs-node(-gpu)'s
 * deps/lib sees (name, type, memory TensorFlow reserves for it) and its version. tfjs-node's own
 * binding only says whether it picked a GPU; the trainer's backend report and metrics want the list.
 * Built by scripts/install-tfjs-native.sh against the same libtensorflow as the tfjs binding.
 */
#include <node_api.h>
#include <stdint.h>
#include <tensorflow/c/c_api.h>
#include <tensorflow/c/eager/c_api.h>

#define CHECK_NAPI(call)                                        \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      napi_throw_error(env, NULL, "drydock_tf_devices: " #call); \
      return NULL;                                              \
    }                                                           \
  } while (0)

static napi_value set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  CHECK_NAPI(napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v));
  CHECK_NAPI(napi_set_named_property(env, obj, key, v));
  return obj;
}

/* listDevices(): [{ name, type, memoryBytes }] from a short-lived eager context. */
static napi_value list_devices(napi_env env, napi_callback_info info) {
  (void)info;
  TF_Status *status = TF_NewStatus();
  TFE_ContextOptions *opts = TFE_NewContextOptions();
  TFE_Context *ctx = TFE_NewContext(opts, status);
  TFE_DeleteContextOptions(opts);
  if (TF_GetCode(status) != TF_OK) {
    napi_throw_error(env, NULL, TF_Message(status));
    TF_DeleteStatus(status);
    return NULL;
  }
  TF_DeviceList *list = TFE_ContextListDevices(ctx, status);
  napi_value result = NULL;
  if (TF_GetCode(status) == TF_OK) {
    int n = TF_DeviceListCount(list);
    if (napi_create_array_with_length(env, (size_t)n, &result) == napi_ok) {
      for (int i = 0; i < n && result != NULL; i++) {
        napi_value dev, mem;
        const char *name = TF_DeviceListName(list, i, status);
        const char *type = TF_DeviceListType(list, i, status);
        int64_t bytes = TF_DeviceListMemoryBytes(list, i, status);
        if (TF_GetCode(status) != TF_OK || napi_create_object(env, &dev) != napi_ok ||
            set_string(env, dev, "name", name) == NULL || set_string(env, dev, "type", type) == NULL ||
            napi_create_double(env, (double)bytes, &mem) != napi_ok || napi_set_named_property(env, dev, "memoryBytes", mem) != napi_ok ||
            napi_set_element(env, result, (uint32_t)i, dev) != napi_ok) {
          result = NULL;
        }
      }
    }
    TF_DeleteDeviceList(list);
  }
  if (result == NULL) napi_throw_error(env, NULL, TF_GetCode(status) != TF_OK ? TF_Message(status) : "drydock_tf_devices: could not build the device list");
  TFE_DeleteContext(ctx);
  TF_DeleteStatus(status);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, version;
  CHECK_NAPI(napi_create_function(env, "listDevices", NAPI_AUTO_LENGTH, list_devices, NULL, &fn));
  CHECK_NAPI(napi_set_named_property(env, exports, "listDevices", fn));
  CHECK_NAPI(napi_create_string_utf8(env, TF_Version(), NAPI_AUTO_LENGTH, &version));
  CHECK_NAPI(napi_set_named_property(env, exports, "version", version));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
