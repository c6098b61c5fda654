// Operator schemas (ops_dcnv3::dcnv3_forward / dcnv3_backward, dcnv4_forward / dcnv4_backward) and the Python module
// `ops_dcnv3._C` whose import loads this library. Device kernels are registered in cpu/ and
// cuda/ with TORCH_LIBRARY_IMPL; the argument checks they share are in dcnv3_arguments.cpp.
#include <Python.h>
#include <torch/library.h>

#include "dcnv3.h"

namespace ops_dcnv3 {

TORCH_LIBRARY(ops_dcnv3, m) {
  m.def(
      "dcnv3_forward(Tensor input, Tensor offset, Tensor mask, int kernel_h, int kernel_w, "
      "int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, "
      "int group, int group_channels, float offset_scale, bool remove_center, "
      "bool softmax_mask=False) -> Tensor");
  m.def(
      "dcnv3_backward(Tensor input, Tensor offset, Tensor mask, Tensor grad_output, "
      "int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w, "
      "int dilation_h, int dilation_w, int group, int group_channels, float offset_scale, "
      "bool remove_center, bool softmax_mask=False) -> (Tensor, Tensor, Tensor)");
  // DCNv4: one packed offset_mask tensor (see DCNv3Geometry::packed_dim), no softmax.
  m.def(
      "dcnv4_forward(Tensor input, Tensor offset_mask, int kernel_h, int kernel_w, "
      "int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, "
      "int group, int group_channels, float offset_scale, bool remove_center) -> Tensor");
  m.def(
      "dcnv4_backward(Tensor input, Tensor offset_mask, Tensor grad_output, int kernel_h, "
      "int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, "
      "int dilation_w, int group, int group_channels, float offset_scale, "
      "bool remove_center) -> (Tensor, Tensor)");
}

}  // namespace ops_dcnv3

// Importing `ops_dcnv3._C` loads the shared library, which runs the registrations above.
// The module itself only reports constants of the build: `with_cuda` (whether CUDA kernels
// were compiled in), `cpu_isa()` (the instruction set of the CPU kernels, cpu_kernel_isa) and
// `max_softmax_points` (kMaxSoftmaxPoints, the most sampling points per
// group that softmax_mask=True supports; Python reads it as ops_dcnv3.MAX_SOFTMAX_POINTS).
static PyObject* cpu_isa(PyObject*, PyObject*) {
  try {
    return PyUnicode_FromString(ops_dcnv3::cpu_kernel_isa());
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_ValueError, error.what());
    return nullptr;
  }
}

static PyMethodDef dcnv3_methods[] = {
    {"cpu_isa", cpu_isa, METH_NOARGS,
     "The instruction set the CPU kernels run with: default, avx2, avx512 or avx512_bf16."},
    {nullptr, nullptr, 0, nullptr}};

static PyModuleDef dcnv3_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, dcnv3_methods};

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&dcnv3_module);
  if (module == nullptr) return nullptr;
#ifdef WITH_CUDA
  const long with_cuda = 1;
#else
  const long with_cuda = 0;
#endif
  if (PyModule_AddIntConstant(module, "with_cuda", with_cuda) != 0 ||
      PyModule_AddIntConstant(module, "max_softmax_points",
                              static_cast<long>(ops_dcnv3::kMaxSoftmaxPoints)) != 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
